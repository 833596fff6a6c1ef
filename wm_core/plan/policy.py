"""``latent-mpc``: the product's policy. Camera image + joint state in, tool action out.

Per step: encode the image -> score surprise against last step's prediction -> read objects
from the latent -> the task layer picks the subgoal -> the latent MPC plans -> the first
action goes out (through the hard safety filter, in the runner or the ROS safety node) ->
the model predicts the next latent for the surprise check.

It never reads simulator ground truth: ``privileged = False`` and the runner passes no info.
Ablations (``world_model=``): ``copy-last`` (the predictor says nothing changes), ``random``
(untrained weights), ``generative`` (the pixel-reconstruction baseline model);
``guardrails=False`` drops the guardrail costs (the hard filter still applies).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import torch

from wm_core.cell import Camera, Workcell, sim_cell
from wm_core.deploy.backends import backend_name, make_backend
from wm_core.deploy.config import BackendConfig
from wm_core.models import WorldModel
from wm_core.models.checkpoint import load_checkpoint
from wm_core.models.readout import READOUT_SOURCES
from wm_core.plan.config import PlannerConfig, TaskConfig
from wm_core.plan.costs import Goal
from wm_core.plan.planner import LatentMPC
from wm_core.plan.surprise import SurpriseMonitor
from wm_core.plan.task import TableClearingTask, table_objects
from wm_core.robot import ArmKinematics
from wm_core.train.objects import load_objects
from wm_core.train.readout import load_readout, priors_for

log = logging.getLogger(__name__)

STATS_WINDOW = 10_000
"""Steps of per-step figures kept (an evaluated episode has at most 900 at 90 s and 10 Hz)."""

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = REPO_MODELS / "default"
GENERATIVE_MODEL = REPO_MODELS / "generative"
WORLD_MODELS = ("learned", "copy-last", "random", "generative")


class CopyLastModel(torch.nn.Module):
    """Ablation: the learned encoder, but a predictor that says nothing ever changes."""

    def __init__(self, model: WorldModel):
        super().__init__()
        self.inner, self.cfg = model, model.cfg

    def encode(self, images):
        return self.inner.encode(images)

    def predict(self, z, p, a):
        return z, p

    def rollout(self, z0, p0, actions):
        h = actions.shape[1]
        return z0[:, None].expand(-1, h, -1, -1), p0[:, None].expand(-1, h, -1)

    def rollout_proprio(self, z0, p0, actions):
        return p0[:, None].expand(-1, actions.shape[1], -1)


def load_bundle(
    model_dir: Path,
    world_model: str = "learned",
    seed: int = 0,
    cell: Workcell | None = None,
    backend: BackendConfig | None = None,
):
    """(model, object readout) from a model directory (``model.pt`` + ``readout.pt``); the
    readout's per-patch priors come from the cell's camera and table (default: the sim's).
    ``backend`` runs the learned model on another inference backend (wm_core.deploy): the
    ablations are torch-only."""
    if world_model not in WORLD_MODELS:
        raise ValueError(f"world_model={world_model!r} must be one of {WORLD_MODELS}")
    if backend is not None and backend != BackendConfig():
        if world_model != "learned":
            raise ValueError(f"world_model={world_model!r} runs on the torch backend only")
        model = make_backend(Path(model_dir), backend)
        return model, load_readout(Path(model_dir) / "readout.pt", model, cell)
    if world_model == "generative":
        model_dir = GENERATIVE_MODEL if Path(model_dir) == DEFAULT_MODEL else Path(model_dir)
    model_dir = Path(model_dir)
    model = load_checkpoint(model_dir / "model.pt")
    readout = load_readout(model_dir / "readout.pt", model, cell)
    if world_model == "copy-last":
        model = CopyLastModel(model)
    elif world_model == "random":
        torch.manual_seed(seed)
        model = WorldModel(model.cfg).eval()
    return model, readout


class LatentMPCPolicy:
    privileged = False
    needs_images = True

    def __init__(
        self,
        cell: Workcell | None = None,
        planner: str = "cem",
        model_dir: str | Path = DEFAULT_MODEL,
        world_model: str = "learned",
        guardrails: bool = True,
        planner_config: PlannerConfig | None = None,
        task_config: TaskConfig | None = None,
        backend: BackendConfig | None = None,
    ):
        self.cell = cell = cell or sim_cell()
        pcfg = planner_config or PlannerConfig(optimizer=planner)
        if not guardrails:
            pcfg = dataclasses.replace(pcfg, weights=pcfg.weights.guardrails_off())
        self.pcfg, self.tcfg = pcfg, task_config or TaskConfig()
        self.model, self.readout = load_bundle(
            Path(model_dir), world_model, cell=cell, backend=backend
        )
        self.kin = ArmKinematics(base_pose=cell.arm.T_world_base)
        self.objects = (
            load_objects(Path(model_dir) / "objects.pt")
            if pcfg.weights.object_disturbance > 0
            else None
        )
        self.mpc = LatentMPC(self.model, pcfg, cell, objects=self.objects)
        self.task = TableClearingTask(self.tcfg, cell)
        self.surprise = SurpriseMonitor(self.tcfg.surprise_threshold)
        self.settings = {
            "planner": pcfg.optimizer,
            "samples": pcfg.samples,
            "iterations": pcfg.iterations,
            "horizon": pcfg.horizon,
            "world_model": world_model,
            "backend": backend_name(self.model),
            "guardrail_costs": guardrails,
            "object_model": self.objects is not None,
            "model_dir": str(model_dir),
            "cell": cell.source or cell.name,
        }
        self.reset(0)

    def set_camera(self, camera: Camera) -> None:
        """A new calibration of the scene camera: the cell's camera is replaced and the
        readout's per-patch priors recomputed (nothing else depends on the camera)."""
        self.cell = self.cell.with_camera(camera)
        self.readout.priors.copy_(
            torch.as_tensor(priors_for(self.model, self.cell, self.readout.source))
        )
        self.settings["cell"] = f"{self.cell.source or self.cell.name} (camera recalibrated)"

    def reset(self, seed: int) -> None:
        self.mpc.reset()
        self.task.reset()
        self.surprise.reset()
        self.hold_left = 0
        self.done = False
        self.gave_up = False  # done because the attempt budget ran out, not a clear table
        self.last_latent: torch.Tensor | None = None  # [1, N, D] of the last step
        self.last_map: torch.Tensor | None = None  # [1, 4, G', G'] the readout's, last step
        # per-step figures of this episode, bounded: a planner node that runs for days without
        # an episode reset keeps the last STATS_WINDOW steps, not all of them
        self.stats = {
            "act_ms": deque(maxlen=STATS_WINDOW),
            "plan_ms": deque(maxlen=STATS_WINDOW),
            "surprise": deque(maxlen=STATS_WINDOW),
            "holds": 0,
            "bad_input": 0,
        }
        self.last_info: dict = {}

    # ------------------------------------------------------------------ input checks
    def image_tensor(self, obs: dict) -> torch.Tensor | None:
        """obs["image"] -> [1, 3, S, S] in [0, 1], or None (logged) if unusable. Images of
        another size are resized with INTER_AREA; other channel counts are rejected."""
        img = obs.get("image")
        s = self.model.cfg.image_size
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
            shape = getattr(img, "shape", None)
            log.warning("holding: image must be an HxWx3 array, got %s", shape)
            return None
        if img.dtype != np.uint8:
            log.warning("holding: image dtype %s, expected uint8", img.dtype)
            return None
        if img.std() < 1.0:
            log.warning("holding: the camera image is blank (uniform)")
            return None
        if img.shape[:2] != (s, s):
            img = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0

    def _hold(self, suction, why: str) -> np.ndarray:
        """Zero tool motion, suction kept as it is (never drop a held object)."""
        self.stats["holds"] += 1
        s = np.asarray(suction if suction is not None else [0.0], float).reshape(-1)
        on = bool(s.size and np.isfinite(s).all() and s[0] > 0.5)
        self.last_info = {"hold": why}
        return np.array([0.0, 0.0, 0.0, 1.0 if on else -1.0])

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def encode(self, obs: dict) -> torch.Tensor | None:
        """obs["image"] -> latent [1, N, D], or None if the image is unusable (logged)."""
        img = self.image_tensor(obs)
        return None if img is None else self.model.encode(img)

    @property
    def readout_stage(self) -> int | None:
        """The encoder stage the object readout reads (None: the latent)."""
        return READOUT_SOURCES[self.readout.source]

    @torch.no_grad()
    def encode_with_map(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[1, 3, S, S] -> (latent [1, N, D], the readout's raw map [1, 4, G', G'] when it
        reads a finer encoder stage than the latent, else None): what the perception node
        publishes."""
        stage = self.readout_stage
        if stage is None:
            return self.model.encode(img), None
        if not hasattr(self.model, "encode_tap"):
            raise RuntimeError(
                f"the object readout reads encoder stage {stage}; the {backend_name(self.model)}"
                " backend gives only the latent: use backend torch"
            )
        z, f = self.model.encode_tap(img, stage)
        return z, self.readout.raw(f)

    @torch.no_grad()
    def act(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """Camera image + joint state -> action [4]: encode, then :meth:`act_latent`."""
        t0 = time.perf_counter()
        img = self.image_tensor(obs)
        if img is None:
            self.stats["bad_input"] += 1
            return self._hold(obs.get("suction"), "bad image")
        z, raw = self.encode_with_map(img)
        a = self.act_latent(z, obs.get("joint_pos"), obs.get("suction"), raw)
        self.stats["act_ms"].append((time.perf_counter() - t0) * 1e3)
        return a

    @torch.no_grad()
    def act_latent(
        self, z: torch.Tensor, joint_pos, suction, readout_map: torch.Tensor | None = None
    ) -> np.ndarray:
        """The step after perception (what the ROS planner node calls with the latent it
        receives): latent [1, N, D] + joint positions [6] + suction [1] -> action [4].
        ``readout_map`` [1, 4, G', G']: the object readout's raw map, computed with the latent
        from the same image, when the readout reads a finer encoder stage (required then)."""
        q = np.asarray(joint_pos if joint_pos is not None else [], float).reshape(-1)
        s = np.asarray(suction if suction is not None else [np.nan], float).reshape(-1)
        want = (1, self.model.cfg.grid**2, self.model.cfg.latent_dim)
        if q.shape != (6,) or not np.isfinite(q).all() or s.size < 1 or not np.isfinite(s).all():
            self.stats["bad_input"] += 1
            log.warning("holding: joint state %s / suction %s is not finite", q, s)
            return self._hold(suction, "bad joint state")
        if tuple(z.shape) != want or not torch.isfinite(z).all():
            self.stats["bad_input"] += 1
            log.warning("holding: latent %s is not a finite %s", list(z.shape), list(want))
            return self._hold(suction, "bad latent")
        if self.readout_stage is not None:
            g = self.readout.grid
            if (
                readout_map is None
                or tuple(readout_map.shape) != (1, 4, g, g)
                or not torch.isfinite(readout_map).all()
            ):
                self.stats["bad_input"] += 1
                got = None if readout_map is None else list(readout_map.shape)
                log.warning("holding: readout map %s is not a finite [1, 4, %d, %d]", got, g, g)
                return self._hold(suction, "bad readout map")
        tool = self.kin.tool_position(q)
        p = torch.tensor(np.concatenate([q, tool, s[:1]]), dtype=torch.float32)[None]  # [1, 10]
        score = self.surprise.observe(z)
        self.stats["surprise"].append(score)
        # one read at the lower of the two thresholds: the task keeps what it needs per phase
        low = min(self.tcfg.detect_threshold, self.tcfg.verify_threshold)
        raw = self.readout.raw(z) if readout_map is None else readout_map  # [1, 4, G', G']
        weak = self.readout.detect_map(raw, low)[0]  # [M, 4] (x, y, z, objectness)
        self.last_map = raw
        self.last_latent = z
        sub = self.task.update(weak, tool, bool(s[0] > 0.5))
        detections = weak[weak[:, 3] > self.tcfg.detect_threshold]  # [M', 4]
        self.done, self.gave_up = sub.done, sub.done and sub.phase == "gave_up"
        if self.surprise.active:
            self.hold_left = self.tcfg.surprise_hold_steps
            self.mpc.reset()
            self.task.on_surprise()
        if self.hold_left > 0:
            self.hold_left -= 1
            a = self._hold(suction, "surprise")
        else:
            goal = Goal(
                torch.tensor(sub.tool, dtype=torch.float32),
                float(sub.suction),
                objects=self._bystanders(detections, tool, s[0] > 0.5),
            )
            plan = self.mpc.plan(z, p, goal)
            self.stats["plan_ms"].append(plan.latency_ms)
            a = plan.actions[0].astype(float)
            self.last_info = {"phase": sub.phase, "plan": plan}
        a_t = torch.tensor(a, dtype=torch.float32)[None]  # [1, 4]
        self.surprise.expect(self.model.predict(z, p, a_t)[0])
        target = None if self.task.target is None else self.task.target.copy()  # [3]
        self.last_info |= {
            "surprise": score,
            "phase": sub.phase,
            "objects_seen": len(detections),
            "detections": detections,  # [M, 4] (x, y, z, objectness): for the visualisations
            "target": target,
            "subgoal": np.asarray(sub.tool, float),  # [3]
        }
        return a

    def _bystanders(self, detections: np.ndarray, tool: np.ndarray, holding: bool):
        """The detected objects [K, 3] the plan should leave where they are (for the object
        disturbance cost): those on the table (not in the bin, not lifted) but the task's
        target and, with suction on, what is at the cup. None without the object model."""
        if self.objects is None:
            return None
        xyz = table_objects(detections, self.cell)[:, :3]  # [M, 3]
        keep = np.ones(len(xyz), bool)
        r = self.tcfg.lock_radius
        if self.task.target is not None:
            keep &= np.linalg.norm(xyz[:, :2] - self.task.target[:2], axis=1) > r
        if holding:
            keep &= np.linalg.norm(xyz[:, :2] - tool[:2], axis=1) > r
        return torch.tensor(xyz[keep], dtype=torch.float32)

    @torch.no_grad()
    def object_probability(self, points: np.ndarray, radius: float = 0.05) -> np.ndarray:
        """For diagnostics (the miss report): the readout's highest objectness [K] on the last
        latent among the patches whose position estimate lies within ``radius`` m (xy) of each
        point [K, 3]; 0 where no patch does, NaN before the first step."""
        pts = np.asarray(points, float).reshape(-1, 3)  # [K, 3]
        if self.last_latent is None:
            return np.full(len(pts), np.nan)
        logit, xyz = self.readout.decode(self.last_map)  # [1, G, G], [1, G, G, 3]
        prob = torch.sigmoid(logit)[0].reshape(-1).numpy()  # [G*G]
        where = xyz[0].reshape(-1, 3).numpy()[:, :2]  # [G*G, 2]
        near = np.linalg.norm(where[None] - pts[:, None, :2], axis=-1) < radius  # [K, G*G]
        return np.where(near, prob[None], 0.0).max(axis=1)

    def episode_stats(self) -> dict:
        return {
            "act_ms": list(self.stats["act_ms"]),
            "plan_ms": list(self.stats["plan_ms"]),
            "surprise_events": self.surprise.events,
            "surprise_max": float(max(self.stats["surprise"], default=0.0)),
            "holds": self.stats["holds"],
            "bad_input": self.stats["bad_input"],
            "attempts": self.task.attempts,
            "verifications": self.task.verifications,
            "verify_found": self.task.verify_found,
        }
