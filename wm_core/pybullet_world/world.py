"""The PyBullet table-clearing world (simulator side: ground truth lives here).

Built from a cell file (:mod:`wm_core.cell`): the table slab (top at ``table.top_z``), the bin
(floor and the cell's four walls), a pedestal under the arm's base when the table top is below
it, and the scene camera (``camera.K`` scaled to the rendered size, ``T_world_cam``). The arm is
the project's URDF, loaded by PyBullet's own parser (``p.loadURDF``): nothing of the MuJoCo
model is used. Each episode seed draws objects of :data:`~wm_core.pybullet_world.config.SHAPES`
with random size, colour or striped texture, position and yaw.

Acting: :meth:`PyBulletWorld.step_joint` moves the arm's position servos toward a joint target
over one agent step (linear interpolation across the physics steps, each joint's step bounded by
90 % of its URDF velocity limit, as the MuJoCo world's servos are) and sets the suction. Suction
is a fixed constraint between the cup link and an object, made when the cup touches the object
(a contact closer than ``suction_contact_m``) while suction is on, and removed when it turns
off.

Sensing (what a real arm and camera give): :meth:`observation` has joint positions and
velocities, the suction state and the RGB image (TinyRenderer, ``p.ER_TINY_RENDERER``). Ground
truth (object poses, tool position, held, cleared and dropped flags, safety events) is in
:meth:`info` and :meth:`episode_metrics`, for scoring only.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pybullet as p

from wm_core.cell import PYBULLET_CELL_FILE, Workcell, load_cell
from wm_core.pybullet_world.config import SHAPES, PyBulletWorldConfig
from wm_core.robot.kinematics import TOOL_LINK
from wm_core.robot.urdf import DEFAULT_URDF, load_arm
from wm_core.sim.safety import SafetyLimits, SafetyMonitor, SafetySample

log = logging.getLogger(__name__)

NEAR_M, FAR_M = 0.02, 5.0
"""Clipping planes of the rendering camera (m)."""
SETTLE_S = 0.3
"""Objects settle this long (simulated) after they are placed."""
STRIPES_PX = 64
"""Side (px) of the generated stripe textures."""


@dataclass(frozen=True)
class ObjectSpec:
    """One object of an episode (ground truth)."""

    name: str
    shape: str
    half_size: tuple[float, float, float]
    """Box half-extents, or (radius, radius, half-height) of a cylinder (m)."""
    rgba: tuple[float, float, float, float]
    texture: int
    """Index of the stripe texture it wears, or -1 (plain colour)."""
    pos: tuple[float, float, float]
    yaw: float


def distortion_maps(
    k: np.ndarray, d: tuple[float, ...], width: int, height: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``cv2.remap`` maps [H, W] float32 (x, y) that turn a pinhole render with intrinsics
    ``k`` [3, 3] into the image a camera with plumb_bob distortion ``d`` sees: each output
    pixel reads the pinhole pixel its undistorted ray hits. None when ``d`` is all zero."""
    if not np.any(np.asarray(d, float)):
        return None
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    pix = np.stack([u, v], axis=-1).reshape(-1, 1, 2)  # [H*W, 1, 2] distorted pixels
    src = cv2.undistortPoints(pix, k, np.asarray(d, float), P=k).reshape(height, width, 2)
    return src[..., 0].astype(np.float32), src[..., 1].astype(np.float32)


def projection_matrix(k: np.ndarray, width: int, height: int) -> list[float]:
    """OpenGL projection (column-major, 16 numbers) of pinhole ``k`` [3, 3] at ``width`` x
    ``height`` px, image row 0 at the top (as ``p.getCameraImage`` returns it)."""
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    n, f = NEAR_M, FAR_M
    m = np.array(
        [
            [2 * fx / width, 0.0, 1 - 2 * cx / width, 0.0],
            [0.0, 2 * fy / height, 2 * cy / height - 1, 0.0],
            [0.0, 0.0, -(f + n) / (f - n), -2 * f * n / (f - n)],
            [0.0, 0.0, -1.0, 0.0],
        ]
    )
    return [float(x) for x in m.flatten(order="F")]


def view_matrix(t_world_cam: np.ndarray) -> list[float]:
    """OpenGL view matrix (column-major) of an OpenCV optical frame pose [4, 4]: the GL camera
    looks along its -z with y up, so its pose is ``T_world_cam @ diag(1, -1, -1, 1)``."""
    gl = np.asarray(t_world_cam, float) @ np.diag([1.0, -1.0, -1.0, 1.0])
    return [float(x) for x in np.linalg.inv(gl).flatten(order="F")]


class PyBulletWorld:
    """``reset(seed)``, ``step_joint(q, suction)``, ``observation()``, ``info()``."""

    def __init__(self, config: PyBulletWorldConfig | None = None, cell: Workcell | None = None):
        self.cfg = config or PyBulletWorldConfig()
        self.cell = cell or load_cell(PYBULLET_CELL_FILE)
        self.arm_desc = load_arm()
        self.names = self.arm_desc.joint_names
        if tuple(self.cell.arm.joint_names) != tuple(self.names):
            raise ValueError(
                f"the cell's arm.joint_names {list(self.cell.arm.joint_names)} are not the "
                f"URDF's {list(self.names)}"
            )
        self.lower, self.upper = self.arm_desc.lower, self.arm_desc.upper
        self.velocity_limit = self.arm_desc.velocity_limit
        cam = self.cell.camera
        self.width = self.cfg.image_width
        self.height = max(8, round(self.cfg.image_width * cam.height / cam.width))
        self.K = cam.k_for(self.width, self.height)  # [3, 3] at the rendered size
        self._view = view_matrix(cam.pose)
        self._proj = projection_matrix(self.K, self.width, self.height)
        self._distort = distortion_maps(self.K, cam.D, self.width, self.height)
        self.monitor = SafetyMonitor(
            SafetyLimits(
                self.lower,
                self.upper,
                self.velocity_limit,
                self.cfg.tool_speed_limit,
                tuple((np.array(lo), np.array(hi)) for lo, hi in self.cell.keepout_boxes),
            ),
            clear_samples=max(1, round(0.05 * self.cfg.physics_hz)),  # 50 ms, as MuJoCo's
        )
        self.client = p.connect(p.DIRECT)
        self._tmp = tempfile.TemporaryDirectory(prefix="wm_pybullet_")
        self.objects: list[ObjectSpec] = []
        self.body_ids: list[int] = []
        self.steps = 0
        self.arm = -1
        self.board = -1

    # ------------------------------------------------------------------ building
    def close(self) -> None:
        if self.client >= 0 and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = -1
        self._tmp.cleanup()

    def _box(self, lo, hi, rgba, mass: float = 0.0, texture: int = -1) -> int:
        c = self.client
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        half = (hi - lo) / 2
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half.tolist(), physicsClientId=c)
        vis = p.createVisualShape(
            p.GEOM_BOX, halfExtents=half.tolist(), rgbaColor=list(rgba), physicsClientId=c
        )
        body = p.createMultiBody(mass, col, vis, ((lo + hi) / 2).tolist(), physicsClientId=c)
        return body

    def _build_cell(self) -> None:
        """Floor, table, pedestal, bin and arm, from the cell file and the URDF."""
        c, cell, cfg = self.client, self.cell, self.cfg
        p.resetSimulation(physicsClientId=c)
        p.setGravity(0, 0, -9.81, physicsClientId=c)
        p.setTimeStep(1.0 / cfg.physics_hz, physicsClientId=c)
        t, z0 = cell.table, cell.table.top_z
        floor_z = z0 - 0.75
        self._box((-3, -3, floor_z - 0.02), (3, 3, floor_z), cfg.floor_rgba)
        self.table = self._box(
            (t.x[0], t.y[0], z0 - t.thickness), (t.x[1], t.y[1], z0), cfg.table_rgba
        )
        b = cell.bin
        cx, cy = b.center
        o = b.inner_half + b.wall_thickness
        self.bin_parts = [
            self._box((cx - o, cy - o, z0), (cx + o, cy + o, z0 + 0.004), cfg.bin_rgba)
        ]
        self.bin_parts += [self._box(lo, hi, cfg.bin_rgba) for lo, hi in b.wall_boxes(z0)]
        base = cell.arm.T_world_base
        bz = base[2, 3]
        if bz > z0 + 1e-3:  # the arm stands on a pedestal on the table
            bx, by = base[0, 3], base[1, 3]
            self.pedestal = self._box(
                (bx - 0.09, by - 0.09, z0), (bx + 0.09, by + 0.09, bz), (0.2,) * 3 + (1.0,)
            )
        quat = _matrix_to_quat(base[:3, :3])
        self.arm = p.loadURDF(
            str(DEFAULT_URDF),
            basePosition=base[:3, 3].tolist(),
            baseOrientation=quat,
            useFixedBase=True,
            flags=p.URDF_USE_INERTIA_FROM_FILE,
            physicsClientId=c,
        )
        self.joint_index, self.link_index = {}, {}
        for j in range(p.getNumJoints(self.arm, physicsClientId=c)):
            ji = p.getJointInfo(self.arm, j, physicsClientId=c)
            self.joint_index[ji[1].decode()] = j
            self.link_index[ji[12].decode()] = j
        self.q_index = [self.joint_index[n] for n in self.names]
        self.cup = self.link_index[TOOL_LINK]
        self.arm_links = list(self.link_index.values())  # the base (-1) stands on its mount
        self.effort = np.array([j.effort for j in self.arm_desc.actuated])
        for j in range(-1, p.getNumJoints(self.arm, physicsClientId=c)):
            p.changeVisualShape(self.arm, j, rgbaColor=[0.82, 0.82, 0.85, 1], physicsClientId=c)
        p.changeVisualShape(self.arm, self.cup, rgbaColor=[0.1, 0.1, 0.1, 1], physicsClientId=c)

    def _textures(self, rng: np.random.Generator) -> list[int]:
        """Two stripe textures of this episode's colours (PNG files PyBullet loads)."""
        import imageio.v3 as iio

        out = []
        for i in range(2):
            a, b = (rng.uniform(0.05, 0.95, size=3) * 255).astype(np.uint8), None
            b = (255 - a // 2).astype(np.uint8)
            img = np.empty((STRIPES_PX, STRIPES_PX, 3), np.uint8)
            band = (np.arange(STRIPES_PX) // (STRIPES_PX // 8)) % 2 == 0  # [S] 8 stripes
            img[band] = a
            img[~band] = b
            path = Path(self._tmp.name) / f"stripes{i}.png"
            iio.imwrite(path, img)
            out.append(p.loadTexture(str(path), physicsClientId=self.client))
        return out

    def _sample_objects(self, rng: np.random.Generator, n_textures: int) -> list[ObjectSpec]:
        cfg, z0 = self.cfg, self.cell.table.top_z
        lo, hi = cfg.object_half_size
        objs, placed = [], []  # placed: (x, y, radius)
        for i in range(cfg.n_objects):
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            if shape == "box":
                hs = tuple(float(v) for v in rng.uniform(lo, hi, size=3))
            elif shape == "cylinder":
                r = float(rng.uniform(lo, hi))
                hs = (r, r, float(rng.uniform(lo, hi)))
            else:  # bar: long, narrow, low
                w = float(rng.uniform(lo, 0.5 * (lo + hi)))
                hs = (
                    float(min(0.05, w * rng.uniform(2.0, 3.0))),
                    w,
                    float(rng.uniform(lo, 0.8 * hi)),
                )
            rgba = (*(float(v) for v in rng.uniform(0.05, 1.0, size=3)), 1.0)
            texture = int(rng.integers(n_textures)) if rng.random() < cfg.textured_fraction else -1
            radius = float(np.hypot(hs[0], hs[1]))
            for _ in range(1000):
                x, y = float(rng.uniform(*cfg.object_x)), float(rng.uniform(*cfg.object_y))
                if all(np.hypot(x - px, y - py) > radius + pr + 0.03 for px, py, pr in placed):
                    break
            else:
                raise RuntimeError("could not place the objects without overlap: widen object_x/y")
            placed.append((x, y, radius))
            yaw = float(rng.uniform(-np.pi, np.pi))
            objs.append(
                ObjectSpec(f"obj{i}", shape, hs, rgba, texture, (x, y, z0 + hs[2] + 0.002), yaw)
            )
        return objs

    def _add_object(self, o: ObjectSpec, textures: list[int]) -> int:
        c = self.client
        if o.shape == "cylinder":
            r, _, h = o.half_size
            col = p.createCollisionShape(p.GEOM_CYLINDER, radius=r, height=2 * h, physicsClientId=c)
            vis = p.createVisualShape(
                p.GEOM_CYLINDER, radius=r, length=2 * h, rgbaColor=list(o.rgba), physicsClientId=c
            )
        else:
            hs = list(o.half_size)
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=hs, physicsClientId=c)
            vis = p.createVisualShape(
                p.GEOM_BOX, halfExtents=hs, rgbaColor=list(o.rgba), physicsClientId=c
            )
        quat = p.getQuaternionFromEuler([0, 0, o.yaw])
        body = p.createMultiBody(
            self.cfg.object_mass, col, vis, list(o.pos), quat, physicsClientId=c
        )
        p.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=c)
        if o.texture >= 0:
            p.changeVisualShape(
                body,
                -1,
                textureUniqueId=textures[o.texture],
                rgbaColor=[1, 1, 1, 1],
                physicsClientId=c,
            )
        return body

    def _add_board(self) -> int:
        """A visual-only plate with the calibration board's texture, kept beside the cup
        (:meth:`_place_board`); its face looks along the cup's -z (up when the tool points
        down), where the MuJoCo world's plate is (``wm_core.sim.scene.BOARD_PLATE_OFFSET``)."""
        from wm_core.sim.calibration import board_texture

        c = self.client
        (w, h), png = board_texture()
        path = Path(self._tmp.name) / "calib_board.png"
        path.write_bytes(png)
        x, y = w / 2, h / 2
        # the quad in the plate frame (z = its normal, toward the viewer); uv (0, 0) is the
        # image's top-left corner, seen from +z
        verts = [[-x, y, 0.0], [x, y, 0.0], [x, -y, 0.0], [-x, -y, 0.0]]
        uvs = [[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
        vis = p.createVisualShape(
            p.GEOM_MESH,
            vertices=verts,
            indices=[0, 2, 1, 0, 3, 2],
            uvs=uvs,
            normals=[[0.0, 0.0, 1.0]] * 4,
            physicsClientId=c,
        )
        body = p.createMultiBody(0.0, -1, vis, [0, 0, -10], physicsClientId=c)
        tex = p.loadTexture(str(path), physicsClientId=c)
        p.changeVisualShape(
            body, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1], physicsClientId=c
        )
        return body

    def _place_board(self) -> None:
        from wm_core.sim.scene import BOARD_PLATE_OFFSET

        c = self.client
        cup_pos, cup_orn = p.getLinkState(self.arm, self.cup, physicsClientId=c)[4:6]
        flip = p.getQuaternionFromEuler([np.pi, 0, 0])  # the plate's +z along the cup's -z
        pos, orn = p.multiplyTransforms(cup_pos, cup_orn, BOARD_PLATE_OFFSET, flip)
        p.resetBasePositionAndOrientation(self.board, pos, orn, physicsClientId=c)

    # ------------------------------------------------------------------ episodes
    def reset(self, seed: int) -> None:
        """A new episode: the cell, the arm at the cell's home pose, the seed's objects."""
        rng = np.random.default_rng(seed)
        c = self.client
        self._build_cell()
        textures = self._textures(rng)
        self.objects = self._sample_objects(rng, len(textures))
        self.body_ids = [self._add_object(o, textures) for o in self.objects]
        self.board = self._add_board() if self.cfg.calibration_board else -1
        home = np.array(self.cell.arm.home_q)
        for j, q in zip(self.q_index, home, strict=True):
            p.resetJointState(self.arm, j, q, 0.0, physicsClientId=c)
        self.q_cmd = home.copy()
        self._drive(home)
        for _ in range(round(SETTLE_S * self.cfg.physics_hz)):
            p.stepSimulation(physicsClientId=c)
        self.suction = False
        self.grip: dict[int, int] = {}  # object index -> constraint id
        self.monitor.reset()
        self.steps = 0
        self.t_s = 0.0
        self._prev_tool = self.tool_position()
        self._dropped = np.zeros(len(self.objects), bool)
        self._cleared = np.zeros(len(self.objects), bool)
        self._events: set[str] = set()
        self._tool_speed_peak = 0.0
        self._update_status()
        log.debug("episode %d: %d objects", seed, len(self.objects))

    def _drive(self, q: np.ndarray) -> None:
        p.setJointMotorControlArray(
            self.arm,
            self.q_index,
            p.POSITION_CONTROL,
            targetPositions=[float(x) for x in q],
            forces=[float(x) for x in 4 * self.effort],
            positionGains=[0.5] * 6,
            physicsClientId=self.client,
        )

    def step_joint(self, q_target: np.ndarray, suction: bool) -> tuple[bool, bool]:
        """Move toward ``q_target`` [6] over one agent step with the suction on or off;
        returns (terminated: every object cleared or dropped, truncated: time limit)."""
        if self.arm < 0:
            raise RuntimeError("PyBulletWorld: call reset(seed) before step_joint()")
        q_target = np.clip(np.asarray(q_target, float), self.lower, self.upper)
        max_dq = 0.9 * self.velocity_limit / self.cfg.control_hz
        q_prev = self.q_cmd
        q_new = q_prev + np.clip(q_target - q_prev, -max_dq, max_dq)
        self.q_cmd = q_new
        self._set_suction(bool(suction))
        n = self.cfg.substeps
        events: set[str] = set()
        self._tool_speed_peak = 0.0
        for k in range(1, n + 1):
            self._drive(q_prev + (q_new - q_prev) * (k / n))
            p.stepSimulation(physicsClientId=self.client)
            if self.suction:
                self._grip_touching()
            sample = self._safety_sample()
            self._tool_speed_peak = max(self._tool_speed_peak, sample.tool_speed)
            events |= self.monitor.update(sample)
        self.steps += 1
        self.t_s = self.steps / self.cfg.control_hz
        self._events = events
        self._update_status()
        terminated = bool(np.all(self._cleared | self._dropped))
        truncated = (not terminated) and self.steps >= self.cfg.max_steps
        return terminated, truncated

    # ------------------------------------------------------------------ suction
    def _set_suction(self, on: bool) -> None:
        if not on:
            for cid in self.grip.values():
                p.removeConstraint(cid, physicsClientId=self.client)
            self.grip = {}
        self.suction = on

    def touching(self) -> list[int]:
        """Indices of the objects the cup touches now."""
        out = []
        for i, body in enumerate(self.body_ids):
            pts = p.getContactPoints(
                self.arm, body, linkIndexA=self.cup, physicsClientId=self.client
            )
            if any(pt[8] < self.cfg.suction_contact_m for pt in pts):
                out.append(i)
        return out

    def _grip_touching(self) -> None:
        """Fix every object the cup touches to the cup (suction is on)."""
        c = self.client
        for i in self.touching():
            if i in self.grip:
                continue
            cup_pos, cup_orn = p.getLinkState(self.arm, self.cup, physicsClientId=c)[4:6]
            obj_pos, obj_orn = p.getBasePositionAndOrientation(self.body_ids[i], physicsClientId=c)
            inv_pos, inv_orn = p.invertTransform(cup_pos, cup_orn)
            rel_pos, rel_orn = p.multiplyTransforms(inv_pos, inv_orn, obj_pos, obj_orn)
            # the link frame of the constraint's parent is the cup link's inertial frame
            com_pos, com_orn = p.getLinkState(self.arm, self.cup, physicsClientId=c)[2:4]
            inv_com = p.invertTransform(com_pos, com_orn)
            rel_pos, rel_orn = p.multiplyTransforms(*inv_com, rel_pos, rel_orn)
            cid = p.createConstraint(
                self.arm,
                self.cup,
                self.body_ids[i],
                -1,
                p.JOINT_FIXED,
                [0, 0, 0],
                rel_pos,
                [0, 0, 0],
                parentFrameOrientation=rel_orn,
                physicsClientId=c,
            )
            p.changeConstraint(cid, maxForce=self.cfg.suction_force, physicsClientId=c)
            self.grip[i] = cid

    # ------------------------------------------------------------------ ground truth
    def tool_position(self) -> np.ndarray:
        """World position [3] of the cup tip (the URDF's ``suction_cup`` frame)."""
        return np.array(p.getLinkState(self.arm, self.cup, physicsClientId=self.client)[4])

    def object_positions(self) -> np.ndarray:
        """[K, 3] object centres."""
        if not self.body_ids:
            return np.zeros((0, 3))
        return np.array(
            [
                p.getBasePositionAndOrientation(b, physicsClientId=self.client)[0]
                for b in self.body_ids
            ]
        )

    def _safety_sample(self) -> SafetySample:
        c = self.client
        q, qd = self.joint_state()
        tool = self.tool_position()
        speed = float(np.linalg.norm(tool - self._prev_tool) * self.cfg.physics_hz)
        self._prev_tool = tool
        boxes = [p.getAABB(self.arm, j, physicsClientId=c) for j in self.arm_links]
        lo, hi = np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])  # [L, 3]
        return SafetySample(
            q=q,
            qd=qd,
            tool_speed=speed,
            arm_points=(lo + hi) / 2,
            arm_radii=np.linalg.norm(hi - lo, axis=1) / 2,
            touching_table=self._arm_contact([self.table]),
            touching_bin=self._arm_contact(self.bin_parts),
        )

    def _arm_contact(self, bodies: list[int]) -> bool:
        for b in bodies:
            for pt in p.getContactPoints(self.arm, b, physicsClientId=self.client):
                if pt[3] >= 0 and pt[8] < 0:  # an arm link (not the base) penetrating
                    return True
        return False

    def _update_status(self) -> None:
        pos = self.object_positions()  # [K, 3]
        b, z0 = self.cell.bin, self.cell.table.top_z
        cx, cy = b.center
        h = b.inner_half
        in_bin = (
            (np.abs(pos[:, 0] - cx) < h)
            & (np.abs(pos[:, 1] - cy) < h)
            & (pos[:, 2] < z0 + b.wall_height + 0.05)
            & (pos[:, 2] > z0 - 0.01)
        )
        held = self._held = np.array([i in self.grip for i in range(len(self.objects))], bool)
        tx, ty = self.cell.table.x, self.cell.table.y
        off_table = (
            (pos[:, 2] < z0 - 0.05)
            | (pos[:, 0] < tx[0])
            | (pos[:, 0] > tx[1])
            | (pos[:, 1] < ty[0])
            | (pos[:, 1] > ty[1])
        )
        self._cleared = in_bin & ~held
        self._dropped |= off_table & ~in_bin & ~held  # carried past the edge is not dropped

    def info(self) -> dict:
        """Privileged ground truth: scoring only."""
        return {
            "object_pos": self.object_positions(),  # [K, 3]
            "tool_pos": self.tool_position(),  # [3]
            "cleared": self._cleared.copy(),  # [K] bool
            "dropped": self._dropped.copy(),  # [K] bool
            "held": self._held.copy(),  # [K] bool
            "object_half_height": np.array([o.half_size[2] for o in self.objects]),  # [K]
            "safety_events": sorted(self._events),
            "tool_speed_peak": self._tool_speed_peak,  # m/s, the last step's
            "sim_time": self.t_s,
        }

    def episode_metrics(self) -> dict:
        """Scores of the episode so far (the keys of the MuJoCo world's)."""
        return {
            "objects": len(self.objects),
            "cleared": int(self._cleared.sum()),
            "dropped": int(self._dropped.sum()),
            "sim_time_s": float(self.t_s),
            "steps": self.steps,
            "safety": dict(self.monitor.counts),
        }

    # ------------------------------------------------------------------ sensors
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured joint positions and velocities [6] (the encoders)."""
        states = p.getJointStates(self.arm, self.q_index, physicsClientId=self.client)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def render(self) -> np.ndarray:
        """RGB image [H, W, 3] uint8 of the scene camera (TinyRenderer)."""
        cfg = self.cfg
        if self.board >= 0:
            self._place_board()
        d = np.asarray(cfg.light_direction, float)
        _, _, rgba, _, _ = p.getCameraImage(
            self.width,
            self.height,
            viewMatrix=self._view,
            projectionMatrix=self._proj,
            renderer=p.ER_TINY_RENDERER,
            lightDirection=(d / np.linalg.norm(d)).tolist(),
            lightColor=list(cfg.light_color),
            lightDistance=3.0,
            shadow=int(cfg.shadows),
            lightAmbientCoeff=cfg.light_ambient,
            lightDiffuseCoeff=cfg.light_diffuse,
            lightSpecularCoeff=cfg.light_specular,
            physicsClientId=self.client,
        )
        img = np.asarray(rgba, np.uint8).reshape(self.height, self.width, 4)[:, :, :3]
        if self._distort is not None:  # the renderer is a pinhole; the cell's camera is not
            img = cv2.remap(img, *self._distort, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(img)

    def observation(self) -> dict:
        """What a real robot has: joints, suction state, the camera image."""
        q, qd = self.joint_state()
        return {
            "joint_pos": q.astype(np.float32),
            "joint_vel": qd.astype(np.float32),
            "suction": np.array([float(self.suction)], np.float32),
            # the cup's vacuum switch (a real suction gripper's "object held" signal)
            "suction_held": np.array([float(self._held.any())], np.float32),
            "image": self.render(),
        }


def _matrix_to_quat(r: np.ndarray) -> list[float]:
    """Rotation [3, 3] -> PyBullet quaternion (x, y, z, w)."""
    w = math.sqrt(max(0.0, 1 + r[0, 0] + r[1, 1] + r[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1 + r[0, 0] - r[1, 1] - r[2, 2])) / 2, r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1 - r[0, 0] + r[1, 1] - r[2, 2])) / 2, r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1 - r[0, 0] - r[1, 1] + r[2, 2])) / 2, r[1, 0] - r[0, 1])
    return [x, y, z, w]
