"""``wm bench sim``: physics, rendering and env-step throughput of the table-clearing world.

Figures come with same-run ratios (env step against raw physics, render against the agent
step budget) because the machines are noisy.
"""

from __future__ import annotations

import platform
import time

import mujoco
import numpy as np

from wm_core.eval.policies import OraclePolicy
from wm_core.sim import SceneConfig, TableClearingEnv


def _rate(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def bench_sim(
    physics_steps: int = 20000, frames: int = 200, env_steps: int = 300, seed: int = 0
) -> dict:
    cfg = SceneConfig(render_images=False, n_objects=3)
    env = TableClearingEnv(cfg)
    env.reset(seed)
    m, d = env.model, env.data

    physics_sps = _rate(lambda: mujoco.mj_step(m, d), physics_steps)

    env.render("scene_cam", 128)  # create the renderer outside the timed region
    render_fps = _rate(lambda: env.render("scene_cam", 128), frames)

    def run_env(env_: TableClearingEnv, n: int) -> float:
        pol = OraclePolicy(env_.cfg, env_.cell)
        obs, info = env_.reset(seed)
        pol.reset(seed)
        t0 = time.perf_counter()
        for _ in range(n):
            obs, _, term, trunc, info = env_.step(pol.act(obs, info))
            if term or trunc:
                obs, info = env_.reset(seed)
                pol.reset(seed)
        return n / (time.perf_counter() - t0)

    env_sps = run_env(env, env_steps)
    env.close()
    env_img = TableClearingEnv(SceneConfig(render_images=True, image_size=128))
    env_img_sps = run_env(env_img, env_steps // 3)
    env_img.close()

    substeps = cfg.substeps
    return {
        "benchmark": "sim",
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
        "mujoco_version": mujoco.__version__,
        "physics_hz": 1.0 / cfg.physics_dt,
        "control_hz": cfg.control_hz,
        "physics_steps_per_s": round(physics_sps, 1),
        "physics_realtime_factor": round(physics_sps * cfg.physics_dt, 1),
        "render_fps_128": round(render_fps, 1),
        "env_steps_per_s": round(env_sps, 1),
        "env_realtime_factor": round(env_sps / cfg.control_hz, 1),
        "env_steps_per_s_with_128px_image": round(env_img_sps, 1),
        "env_step_over_raw_physics_ratio": round(physics_sps / substeps / env_sps, 2),
        "targets": {"physics_realtime_factor_min": 100, "render_fps_128_min": 30},
        "targets_met": {
            "physics_realtime_factor": bool(physics_sps * cfg.physics_dt >= 100),
            "render_fps_128": bool(render_fps >= 30),
        },
        "notes": "software EGL rendering (Mesa llvmpipe) unless a GPU is present; "
        f"env steps run {substeps} physics steps plus IK and safety checks each",
        "seed": seed,
        "n_samples": {"physics": physics_steps, "frames": frames, "env_steps": env_steps},
        "numpy": np.__version__,
    }
