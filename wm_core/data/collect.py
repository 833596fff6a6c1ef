"""``wm collect``: parallel, resumable collection of table-clearing trajectories.

Each episode uses one exploration mode, drawn from its seed:

- ``oracle``: the scripted pick-and-place oracle (suction, contact, transport, release);
- ``noisy_oracle``: the oracle with Gaussian action noise (near-miss grasps, drops, contact);
- ``mixed``: alternating segments of random actions (free motion) and oracle control.

The oracle reads ground truth to *generate* data; that is allowed for collection. The ground
truth itself is stored only under ``label/*`` in the shard, apart from the model inputs.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wm_core.config import ConfigError, check_range, short_repr
from wm_core.data.shards import Episode, ShardError, load_shard, save_shard
from wm_core.eval.policies import OraclePolicy
from wm_core.sim import SceneConfig, TableClearingEnv

log = logging.getLogger(__name__)

MODES = ("oracle", "noisy_oracle", "mixed")


@dataclass(frozen=True)
class CollectConfig:
    steps_per_episode: int = 200
    """Actions per episode (the episode is cut there or when the table is clear)."""
    image_size: int = 128
    """Side of the recorded scene-camera image (px)."""
    mode_weights: tuple[float, float, float] = (0.3, 0.4, 0.3)
    """Probabilities of the exploration modes ``MODES``."""
    action_noise: float = 0.3
    """Std of the Gaussian noise added to the oracle's action in ``noisy_oracle``."""
    segment_steps: tuple[int, int] = (5, 25)
    """Range of segment lengths in ``mixed`` mode."""
    paired: bool = False
    """Also render every frame with the nominal look (``label/image_nominal``): the same
    state without the appearance and light randomisation, for ``wm train invariance``."""

    def __post_init__(self) -> None:
        check_range("steps_per_episode", self.steps_per_episode, 1, 10000, integer=True)
        check_range("image_size", self.image_size, 16, 512, integer=True)
        check_range("action_noise", self.action_noise, 0.0, 2.0)
        w = self.mode_weights
        if (
            not isinstance(w, tuple)
            or len(w) != len(MODES)
            or not all(isinstance(p, int | float) and 0.0 <= p <= 1.0 for p in w)
            or abs(sum(w) - 1) > 1e-6
        ):
            raise ConfigError(
                f"mode_weights={short_repr(w)} must be {len(MODES)} probabilities summing to 1"
            )
        s = self.segment_steps
        if not isinstance(s, tuple) or len(s) != 2:
            raise ConfigError(f"segment_steps={short_repr(s)} must be a pair (low, high)")
        check_range("segment_steps[0]", s[0], 1, 10000, integer=True)
        check_range("segment_steps[1]", s[1], s[0] + 1, 10001, integer=True)


def shard_path(out: Path, seed: int) -> Path:
    return Path(out) / f"episode_{seed:07d}.npz"


def collect_episode(seed: int, scene: SceneConfig, cfg: CollectConfig) -> Episode:
    rng = np.random.default_rng([seed, 1])
    mode = MODES[int(rng.choice(len(MODES), p=cfg.mode_weights))]
    env = TableClearingEnv(
        dataclasses.replace(scene, render_images=True, image_size=cfg.image_size)
    )
    oracle = OraclePolicy(env.cfg, env.cell)
    obs, info = env.reset(seed)
    oracle.reset(seed)
    twin, nominal = None, []
    if cfg.paired:  # the same seed's scene (objects, camera, table) with the nominal look
        look = dict(appearance_jitter=0.0, light_jitter=0.0, render_images=False)
        twin = TableClearingEnv(dataclasses.replace(env.cfg, **look), env.base_cell)
        twin.reset(seed)
        nominal.append(twin.render_state_of(env))
    camera_pose = env.camera_info().T_world_cam  # [4, 4] the episode's (jittered) true pose
    frames, actions, tool, objs = [obs], [], [info["tool_pos"]], [info["object_pos"]]
    random_left = 0
    for _ in range(cfg.steps_per_episode):
        a = oracle.act(obs, info)  # always advance the oracle's state machine
        if mode == "noisy_oracle":
            a = a + rng.normal(0, cfg.action_noise, size=4)
        elif mode == "mixed":
            if random_left == 0 and rng.random() < 0.5:
                random_left = int(rng.integers(*cfg.segment_steps))
            if random_left > 0:
                a = rng.uniform(-1, 1, size=4)
                random_left -= 1
        a = np.clip(a, -1, 1)
        obs, _, term, trunc, info = env.step(a)
        frames.append(obs)
        actions.append(a)
        tool.append(info["tool_pos"])
        objs.append(info["object_pos"])
        if twin is not None:
            nominal.append(twin.render_state_of(env))
        if term or trunc:
            break
    env.close()
    if twin is not None:
        twin.close()
    stacked = {
        k: np.stack([f[k] for f in frames]) for k in ("image", "joint_pos", "joint_vel", "suction")
    }
    labels = {
        "tool_pos": np.asarray(tool, np.float32),
        "object_pos": np.asarray(objs, np.float32),
        "camera_pose": np.asarray(camera_pose, np.float32),
    }
    if twin is not None:
        labels["image_nominal"] = np.stack(nominal)  # [T+1, S, S, 3] uint8
    return Episode(
        obs=stacked,
        action=np.asarray(actions, np.float32),
        meta={
            "seed": seed,
            "mode": mode,
            "source": "sim",
            "scene": dataclasses.asdict(env.cfg),
            "table_top_z": env.cell.table.top_z,  # this episode's (table_height_jitter)
            "collect": dataclasses.asdict(cfg),
        },
        labels=labels,
    )


def _work(args: tuple[int, SceneConfig, CollectConfig, str]) -> tuple[int, int]:
    seed, scene, cfg, out = args
    ep = collect_episode(seed, scene, cfg)
    save_shard(shard_path(Path(out), seed), ep)
    return seed, ep.n_steps


def _done(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        load_shard(path)
        return True
    except ShardError as exc:
        log.warning("re-collecting %s", exc)
        return False


def collect(
    out: Path,
    episodes: int,
    workers: int,
    seed: int,
    scene: SceneConfig,
    cfg: CollectConfig,
    progress: bool = True,
) -> dict:
    """Collect episodes ``seed .. seed+episodes-1`` into ``out``; existing valid shards are
    kept (resume). Returns counts."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in range(seed, seed + episodes) if not _done(shard_path(out, s))]
    steps = 0
    jobs = [(s, scene, cfg, str(out)) for s in todo]
    bar = tqdm(total=len(jobs), desc="collect", unit="ep", disable=not progress)
    if workers <= 1 or len(jobs) <= 1:
        for j in jobs:
            steps += _work(j)[1]
            bar.update()
    else:
        # spawn: each worker gets its own MuJoCo/EGL state, nothing inherited from the parent.
        with mp.get_context("spawn").Pool(workers) as pool:
            for _, n in pool.imap_unordered(_work, jobs):
                steps += n
                bar.update()
    bar.close()
    return {
        "requested": episodes,
        "collected": len(todo),
        "skipped_existing": episodes - len(todo),
        "steps": steps,
        "out": str(out),
    }
