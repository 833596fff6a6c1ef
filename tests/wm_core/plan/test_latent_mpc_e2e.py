"""End-to-end MuJoCo episodes with the shipped model: the latent MPC policy from camera images
and joint states only, every command through the hard safety filter."""

import mujoco
import numpy as np
import pytest

from wm_core.eval.runner import make_filter, run_episode, safe_step
from wm_core.plan.policy import LatentMPCPolicy
from wm_core.sim import SceneConfig, TableClearingEnv


def test_latent_mpc_clears_an_object_safely():
    cfg = SceneConfig(n_objects=1)
    env = TableClearingEnv(cfg)
    pol = LatentMPCPolicy(env.cell)
    assert not pol.privileged
    m = run_episode(env, pol, seed=100_001)
    env.close()
    assert m["cleared"] == 1, m
    assert sum(m["safety"].values()) == 0, m["safety"]
    # the guardrail costs keep the plan off the hard limits; near the bin walls the soft
    # collision cost (3 points per capsule, traded against the task) can let a placement come
    # closer than the filter's hard check (4 points per capsule) allows: a hold or two
    assert m["filter"].get("rejected", 0) <= 2, m["filter"]


def test_teleported_object_spikes_surprise_and_the_arm_holds():
    cfg = SceneConfig(n_objects=3)
    env = TableClearingEnv(cfg)
    obs, _ = env.reset(100_003)
    pol = LatentMPCPolicy(env.cell)
    pol.reset(0)
    flt = make_filter(cfg, env.cell)
    flt.reset(obs["joint_pos"])
    scores, actions, tools = [], [], []
    for t in range(24):
        if t == 16:  # an object jumps 15 cm sideways, as if pushed by a person
            m, d = env.model, env.data
            adr = m.jnt_qposadr[m.body_jntadr[env._obj_bodies[0]]]
            d.qpos[adr + 1] += 0.15
            mujoco.mj_forward(m, d)
            obs = env._obs()
        a = pol.act(obs)
        scores.append(pol.last_info["surprise"])
        actions.append(a)
        obs, *_ = safe_step(env, flt, a)
        tools.append(env.kin.tool_position(env.joint_positions()))
    env.close()
    thr = pol.tcfg.surprise_threshold
    assert max(scores[:16]) < thr, scores
    assert scores[16] > thr, scores
    assert pol.surprise.events >= 1
    # the arm holds for surprise_hold_steps: zero motion commanded, and once the servo has
    # caught up with its last setpoint (one step) the tool stays put
    assert pol.tcfg.surprise_hold_steps == 2
    np.testing.assert_allclose(actions[16][:3], 0.0)
    np.testing.assert_allclose(actions[17][:3], 0.0)
    assert np.linalg.norm(tools[17] - tools[16]) < 0.003


@pytest.mark.parametrize(
    "obs_patch, why",
    [
        ({"joint_pos": np.full(6, np.nan, np.float32)}, "bad joint state"),
        ({"image": np.zeros((128, 128, 3), np.uint8)}, "bad image"),
        ({"image": np.zeros((128, 128), np.uint8)}, "bad image"),
        ({"image": np.zeros((128, 128, 3), np.float32) + 0.5}, "bad image"),
    ],
)
def test_bad_input_holds_instead_of_moving(obs_patch, why):
    cfg = SceneConfig(n_objects=1)
    env = TableClearingEnv(cfg)
    obs, _ = env.reset(3)
    env.close()
    pol = LatentMPCPolicy(env.cell)
    a = pol.act(obs | obs_patch)
    np.testing.assert_allclose(a[:3], 0.0)
    assert pol.last_info["hold"] == why and pol.stats["bad_input"] == 1


def test_other_image_sizes_are_resized():
    cfg = SceneConfig(n_objects=1, image_size=96)
    env = TableClearingEnv(cfg)
    obs, _ = env.reset(3)
    env.close()
    pol = LatentMPCPolicy()
    a = pol.act(obs)
    assert a.shape == (4,) and np.isfinite(a).all() and "hold" not in pol.last_info


def test_per_step_figures_are_bounded_for_a_long_running_planner(monkeypatch):
    """A planner node may run for days without an episode reset: the policy keeps the last
    STATS_WINDOW steps of its per-step figures, not all of them."""
    import torch

    from wm_core.plan import policy as policy_mod

    monkeypatch.setattr(policy_mod, "STATS_WINDOW", 5)
    pol = LatentMPCPolicy(planner_config=policy_mod.PlannerConfig(samples=8, iterations=1))
    cfg = pol.model.cfg
    z = torch.zeros(1, cfg.grid**2, cfg.latent_dim)  # [1, N, D]
    q = np.array(pol.cell.arm.home_q)
    for _ in range(8):
        pol.act_latent(z, q, [0.0])
    stats = pol.episode_stats()
    assert len(stats["plan_ms"]) <= 5 and len(pol.stats["surprise"]) == 5
