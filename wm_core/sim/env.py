"""Gymnasium-style table-clearing environment.

Action space (``Box(-1, 1, (4,))``): ``[dx, dy, dz, suction]``. The first three are a tool-tip
displacement in the world frame, scaled by ``SceneConfig.max_tool_step`` (1.8 cm per 0.1 s
step by default, 0.18 m/s, under the 0.25 m/s ISO 10218-1 reduced speed); the tool is kept
pointing straight down (what a suction gripper needs) and the target is clipped to a
workspace box above the table. Inverse kinematics maps the target to joint positions, which
position servos track with linear interpolation across the physics steps of one agent step.
``suction > 0`` switches the suction cup on. We chose clipped Cartesian deltas because they
are bounded, easy for a world model to learn, and map directly onto the planner's safety
costs; ``step_joint`` gives joint-position control for ROS trajectories and tests.

Observations hold only what a real robot has: RGB image(s), joint positions and velocities,
suction state, and the suction cup's vacuum switch (``suction_held``: 1 while the cup holds an
object, as a real suction gripper's "object detected" signal reads). Ground truth (object
poses, tool pose, clear/drop status) is only in ``info``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mujoco
import numpy as np
from transforms3d.quaternions import axangle2quat, qmult

from wm_core.cell import Workcell, sim_cell
from wm_core.robot import ArmKinematics
from wm_core.robot.action import joint_target
from wm_core.sim.config import SceneConfig
from wm_core.sim.safety import SafetyLimits, SafetyMonitor, SafetySample
from wm_core.sim.scene import ObjectSpec, build_scene_xml, draw_appearance, sample_objects

log = logging.getLogger(__name__)

ACTION_DIM = 4


@dataclass(frozen=True)
class CameraInfo:
    """Pinhole intrinsics and extrinsics of a camera (OpenCV convention: x right, y down)."""

    width: int
    height: int
    K: np.ndarray  # [3, 3]
    T_world_cam: np.ndarray  # [4, 4] camera pose in the world (OpenCV optical frame)


class TableClearingEnv:
    """The table-clearing world. ``reset(seed)`` draws a new scene; ``step(action)`` acts."""

    def __init__(
        self,
        config: SceneConfig | None = None,
        cell: Workcell | None = None,
        board: tuple[tuple[float, float], bytes] | None = None,
    ):
        self.cfg = config or SceneConfig()
        self.base_cell = cell or sim_cell()
        """The work cell the scene is built from (table, bin, arm base, camera)."""
        self.cell = self.base_cell
        """This episode's cell: the base cell, its table moved by ``table_height_jitter``."""
        self.board = board
        """(plate size (m), PNG texture): a calibration board on the tool (calibration only)."""
        self.kin = ArmKinematics(base_pose=self.cell.arm.T_world_base)
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self.objects: list[ObjectSpec] = []
        self.monitor = SafetyMonitor(
            SafetyLimits(
                self.kin.lower,
                self.kin.upper,
                self.kin.velocity_limit,
                self.cfg.tool_speed_limit,
                tuple((np.array(lo), np.array(hi)) for lo, hi in self.cell.keepout_boxes),
            )
        )
        self._ws_lo, self._ws_hi = (
            np.array(self.cell.workspace_lo),
            np.array(self.cell.workspace_hi),
        )

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int) -> tuple[dict, dict]:
        rng = np.random.default_rng(seed)
        # Domain randomisation draws from its own stream: a seed's objects, camera and light
        # jitter stay the same with it on or off.
        dr = np.random.default_rng([seed, 2])
        self._set_table_height(dr)
        shift = dr.uniform(-1, 1, size=3) * self.cfg.camera_shift  # [3] m
        self.objects = sample_objects(self.cfg, rng, self.cell.table.top_z)
        look = None
        if self.cfg.appearance_jitter > 0:  # drawn last: a nominal twin shares the rest
            look = draw_appearance(dr, self.cfg.appearance_jitter, len(self.objects))
        self._close_renderers()
        board_m = None if self.board is None else self.board[0]
        assets = None if self.board is None else {"calib_board.png": self.board[1]}
        xml = build_scene_xml(self.cfg, self.objects, self.cell, board_m, look)
        m = mujoco.MjModel.from_xml_string(xml, assets)
        self._jitter(m, rng)
        m.cam_pos[m.camera("scene_cam").id] += shift
        if look is not None:
            for i, tint in zip(range(m.nlight), look.light_tint, strict=False):
                m.light_diffuse[i] = np.clip(m.light_diffuse[i] * np.asarray(tint), 0.0, 1.0)
        d = mujoco.MjData(m)
        self.model, self.data = m, d
        self._index(m)
        home = np.array(self.cell.arm.home_q)
        d.qpos[self._qadr] = home
        d.ctrl[:6] = home
        mujoco.mj_forward(m, d)
        for _ in range(int(0.2 / m.opt.timestep)):  # let objects settle
            mujoco.mj_step(m, d)
        self.q_cmd = home.copy()
        self.suction = False
        self._prev_tool = d.site_xpos[self._tool_site].copy()
        self.monitor.reset()
        self._tool_speed_peak = 0.0
        self._held_contacts = set()
        self.t0 = d.time
        self.steps = 0
        self._dropped = np.zeros(len(self.objects), bool)
        self._cleared = np.zeros(len(self.objects), bool)
        self._update_status()
        return self._obs(), self._info(set())

    def close(self) -> None:
        self._close_renderers()

    def _close_renderers(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers = {}

    def _index(self, m: mujoco.MjModel) -> None:
        names = self.kin.arm.joint_names
        self._qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in names])
        self._dadr = np.array([m.jnt_dofadr[m.joint(n).id] for n in names])
        self._tool_site = m.site("tool_site").id
        arm_bodies = {m.body(n).id for n in self.kin.arm.links if n != self.kin.arm.base_link}
        self._arm_geoms = np.array([g for g in range(m.ngeom) if m.geom_bodyid[g] in arm_bodies])
        self._table_geoms = np.array([m.geom("table").id])
        self._bin_geoms = np.array([g for g in range(m.ngeom) if m.geom(g).name.startswith("bin")])
        self._obj_bodies = np.array([m.body(o.name).id for o in self.objects])
        self._obj_geoms = np.array([m.geom(o.name + "_geom").id for o in self.objects])
        self._cup_geoms = np.array(
            [g for g in range(m.ngeom) if m.geom_bodyid[g] == m.body("suction_cup").id]
        )
        self._scene_cam = m.camera("scene_cam").id
        self._geom_cat = np.zeros(m.ngeom, np.int8)
        self._geom_cat[self._arm_geoms] = 1
        self._geom_cat[self._table_geoms] = 2
        self._geom_cat[self._bin_geoms] = 3

    def _jitter(self, m: mujoco.MjModel, rng: np.random.Generator) -> None:
        """Camera-pose and light jitter, drawn from the episode RNG."""
        if self.cfg.camera_jitter_deg > 0:
            cid = m.camera("scene_cam").id
            axis = rng.normal(size=3)
            angle = np.deg2rad(rng.uniform(-1, 1) * self.cfg.camera_jitter_deg)
            m.cam_quat[cid] = qmult(m.cam_quat[cid], axangle2quat(axis, angle))
        f = self.cfg.light_jitter
        if f > 0:
            for i in range(m.nlight):
                m.light_diffuse[i] *= rng.uniform(1 - f, 1 + f)
                m.light_pos[i] += rng.uniform(-0.5 * f, 0.5 * f, size=3)

    def _set_table_height(self, dr: np.random.Generator) -> None:
        """This episode's cell: the table (and so the bin, the objects and the workspace)
        moved up or down by up to ``table_height_jitter``."""
        base, j = self.base_cell, self.cfg.table_height_jitter
        dz = float(dr.uniform(-j, j)) if j > 0 else 0.0
        self.cell = base.with_table_height(base.table.top_z + dz) if dz else base
        self._ws_lo = np.array(self.cell.workspace_lo)
        self._ws_hi = np.array(self.cell.workspace_hi)

    # ------------------------------------------------------------------ acting
    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Cartesian tool-delta action [4] in [-1, 1]; see the module docstring."""
        q_new, _, _ = self.cartesian_target(action)
        return self._step_joint(q_new, float(np.asarray(action, float).reshape(-1)[3]) > 0)

    def cartesian_target(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """What :meth:`step` would command for ``action``: (joint target [6], tool target [3],
        whether the IK converged; if not, the joint target is the current command). The
        mapping is ``wm_core.robot.action.joint_target`` from the last joint command (the
        commanded basis; that module says why)."""
        a = np.asarray(action, dtype=float).reshape(-1)
        if a.shape != (ACTION_DIM,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be {ACTION_DIM} finite numbers, got {action!r}")
        t = joint_target(self.kin, a, self.q_cmd, self._ws_lo, self._ws_hi, self.cfg.max_tool_step)
        return t.q, t.tool, t.converged

    def step_joint(
        self, q_target: np.ndarray, suction: bool
    ) -> tuple[dict, float, bool, bool, dict]:
        """Joint-position action: move to ``q_target`` [6] over one agent step.

        The step is limited to the joint velocity limits (the servo's own limit); the
        planner-independent hard safety filter (``wm_core.safety``) sits upstream of this call.
        """
        return self._step_joint(q_target, suction)

    def _step_joint(self, q_target: np.ndarray, suction: bool):
        m, d = self.model, self.data
        if m is None or d is None:
            raise RuntimeError("TableClearingEnv: call reset(seed) before step()")
        q_target = np.clip(np.asarray(q_target, float), self.kin.lower, self.kin.upper)
        step_dt = 1.0 / self.cfg.control_hz
        max_dq = 0.9 * self.kin.velocity_limit * step_dt
        q_prev = self.q_cmd
        q_new = q_prev + np.clip(q_target - q_prev, -max_dq, max_dq)
        self.q_cmd = q_new
        self.suction = bool(suction)
        d.ctrl[6] = 1.0 if self.suction else 0.0
        n = self.cfg.substeps
        new_events: set[str] = set()
        self._tool_speed_peak = 0.0
        self._held_contacts: set[str] = set()
        held_geoms = self._obj_geoms[self._held]  # [H] the objects the cup held at the start
        for k in range(1, n + 1):
            d.ctrl[:6] = q_prev + (q_new - q_prev) * (k / n)
            mujoco.mj_step(m, d)
            sample = self._safety_sample()
            self._tool_speed_peak = max(self._tool_speed_peak, sample.tool_speed)
            new_events |= self.monitor.update(sample)
            if len(held_geoms) and d.ncon:
                self._held_contacts |= self._contacts_of(held_geoms)
        self.steps += 1
        n_cleared_before = int(self._cleared.sum())
        self._update_status()
        reward = float(self._cleared.sum() - n_cleared_before)
        terminated = bool(np.all(self._cleared | self._dropped))
        truncated = (not terminated) and self.steps >= self.cfg.max_steps
        return self._obs(), reward, terminated, truncated, self._info(new_events)

    # ------------------------------------------------------------------ sensing
    def _contacts_of(self, geoms: np.ndarray) -> set[str]:
        """What the ``geoms`` (a held object's) touch now, other than the cup: "table", "bin",
        "object" (another object), "arm" (a link other than the cup)."""
        d = self.data
        pairs = d.contact.geom[: d.ncon][d.contact.dist[: d.ncon] < 0]  # [C, 2]
        mine = np.isin(pairs, geoms)  # [C, 2]
        other = np.where(mine[:, 0], pairs[:, 1], pairs[:, 0])[mine.any(axis=1)]  # [C']
        other = other[~np.isin(other, self._cup_geoms) & ~np.isin(other, geoms)]
        names = {2: "table", 3: "bin", 1: "arm"}
        out = {names[c] for c in self._geom_cat[other] if c in names}
        if np.isin(other, self._obj_geoms).any():
            out.add("object")
        return out

    def _safety_sample(self) -> SafetySample:
        m, d = self.model, self.data
        tool = d.site_xpos[self._tool_site]
        speed = float(np.linalg.norm(tool - self._prev_tool) / m.opt.timestep)
        self._prev_tool = tool.copy()
        table = bin_ = False
        if d.ncon:
            cat = self._geom_cat[d.contact.geom[: d.ncon]]  # [ncon, 2] 0 other 1 arm 2 table 3 bin
            cat = cat[d.contact.dist[: d.ncon] < 0]
            arm_pair = (cat[:, 0] == 1) | (cat[:, 1] == 1)
            other = cat[:, 0] + cat[:, 1] - 1  # category of the non-arm geom where arm_pair
            table = bool(np.any(arm_pair & (other == 2)))
            bin_ = bool(np.any(arm_pair & (other == 3)))
        return SafetySample(
            q=d.qpos[self._qadr].copy(),
            qd=d.qvel[self._dadr].copy(),
            tool_speed=speed,
            arm_points=d.geom_xpos[self._arm_geoms],
            arm_radii=m.geom_rbound[self._arm_geoms],
            touching_table=table,
            touching_bin=bin_,
        )

    def _update_status(self) -> None:
        d = self.data
        pos = d.xpos[self._obj_bodies]  # [K, 3]
        b, z0 = self.cell.bin, self.cell.table.top_z
        cx, cy = b.center
        h = b.inner_half
        in_bin = (
            (np.abs(pos[:, 0] - cx) < h)
            & (np.abs(pos[:, 1] - cy) < h)
            & (pos[:, 2] < z0 + b.wall_height + 0.05)
            & (pos[:, 2] > z0 - 0.01)
        )
        held = self._held = self._held_mask()
        tx, ty = self.cell.table.x, self.cell.table.y
        off_table = (
            (pos[:, 2] < self.cell.table.top_z - 0.05)
            | (pos[:, 0] < tx[0])
            | (pos[:, 0] > tx[1])
            | (pos[:, 1] < ty[0])
            | (pos[:, 1] > ty[1])
        )
        self._cleared = in_bin & ~held
        self._dropped |= off_table & ~in_bin

    def _held_mask(self) -> np.ndarray:
        """Objects in contact with the suction cup while suction is on."""
        if not self.suction:
            return np.zeros(len(self.objects), bool)
        pairs = self.data.contact.geom[: self.data.ncon]
        cup = np.isin(pairs, self._cup_geoms)
        held = np.zeros(len(self.objects), bool)
        for i, g in enumerate(self._obj_geoms):
            o = pairs == g
            held[i] = bool(np.any((cup[:, 0] & o[:, 1]) | (cup[:, 1] & o[:, 0])))
        return held

    def joint_positions(self) -> np.ndarray:
        """Measured joint positions [6] (the encoders of a real arm)."""
        return self.data.qpos[self._qadr].copy()

    def _obs(self) -> dict:
        d = self.data
        obs = {
            "joint_pos": d.qpos[self._qadr].astype(np.float32),  # [6]
            "joint_vel": d.qvel[self._dadr].astype(np.float32),  # [6]
            "suction": np.array([float(self.suction)], np.float32),  # [1]
            # the cup's vacuum switch (a real suction gripper's "object held" signal)
            "suction_held": np.array([float(self._held.any())], np.float32),  # [1]
        }
        if self.cfg.render_images:
            obs["image"] = self.render("scene_cam")  # [H, W, 3] uint8
            if self.cfg.wrist_camera:
                obs["wrist_image"] = self.render("wrist_cam")
        return obs

    def _info(self, new_events: set[str]) -> dict:
        """Privileged ground truth: for scoring, baselines and probes only."""
        d = self.data
        return {
            "object_pos": d.xpos[self._obj_bodies].copy(),  # [K, 3]
            "object_quat": d.xquat[self._obj_bodies].copy(),  # [K, 4]
            "object_half_height": np.array([o.half_height for o in self.objects]),  # [K]
            "tool_pos": d.site_xpos[self._tool_site].copy(),  # [3]
            "cleared": self._cleared.copy(),  # [K] bool
            "dropped": self._dropped.copy(),  # [K] bool
            "held": self._held.copy(),  # [K] bool, from _update_status
            "safety_events": sorted(new_events),
            "tool_speed_peak": self._tool_speed_peak,  # m/s, the last step's
            "held_contacts": sorted(self._held_contacts),  # what a held object touched in it
            "sim_time": float(d.time - self.t0),
        }

    def render_state_of(self, other: TableClearingEnv, camera: str = "scene_cam") -> np.ndarray:
        """This scene's look of ``other``'s current state (the same seed's scene with another
        appearance: positions are copied, nothing is stepped): RGB [S, S, 3] uint8."""
        m, d = self.model, self.data
        if m is None or other.data is None or m.nq != other.model.nq:
            raise RuntimeError("render_state_of: reset both scenes with the same seed first")
        d.qpos[:] = other.data.qpos
        mujoco.mj_kinematics(m, d)
        mujoco.mj_camlight(m, d)
        return self.render(camera)

    def render(self, camera: str = "scene_cam", size: int | None = None) -> np.ndarray:
        """RGB image [size, size, 3] uint8 from a named camera."""
        size = size or self.cfg.image_size
        key = (size, size)
        if key not in self._renderers:
            self._renderers[key] = mujoco.Renderer(self.model, size, size)
        r = self._renderers[key]
        r.update_scene(self.data, camera)
        return r.render()

    def camera_info(self, camera: str = "scene_cam", size: int | None = None) -> CameraInfo:
        """Intrinsics from the camera's vertical field of view; extrinsics from its pose."""
        m, d = self.model, self.data
        size = size or self.cfg.image_size
        cid = m.camera(camera).id
        f = 0.5 * size / np.tan(np.deg2rad(m.cam_fovy[cid]) / 2)
        k = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
        t = np.eye(4)
        # MuJoCo camera frame: x right, y up, looking along -z. OpenCV: y down, z forward.
        t[:3, :3] = d.cam_xmat[cid].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        t[:3, 3] = d.cam_xpos[cid]
        return CameraInfo(size, size, k, t)

    def episode_metrics(self) -> dict:
        """Scores of the episode so far."""
        return {
            "objects": len(self.objects),
            "cleared": int(self._cleared.sum()),
            "dropped": int(self._dropped.sum()),
            "sim_time_s": float(self.data.time - self.t0),
            "steps": self.steps,
            "safety": dict(self.monitor.counts),
        }
