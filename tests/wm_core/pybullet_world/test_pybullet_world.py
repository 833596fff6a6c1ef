"""The PyBullet world: the URDF through PyBullet's own parser, the cell it is built from, the
camera against the cell's projection, suction by contact only, and scoring."""

from __future__ import annotations

import numpy as np
import pytest

p = pytest.importorskip("pybullet")

from wm_core.cell import PYBULLET_CELL_FILE, load_cell, sim_cell  # noqa: E402
from wm_core.config import ConfigError  # noqa: E402
from wm_core.pybullet_world import PyBulletWorld, PyBulletWorldConfig  # noqa: E402
from wm_core.robot import ArmKinematics  # noqa: E402
from wm_core.robot.urdf import load_arm  # noqa: E402


@pytest.fixture(scope="module")
def world():
    w = PyBulletWorld(PyBulletWorldConfig(n_objects=1))
    w.reset(3)
    yield w
    w.close()


def test_the_urdf_loads_with_its_joints_limits_and_kinematics(world):
    arm = load_arm()
    c = world.client
    revolute = []
    for j in range(p.getNumJoints(world.arm, physicsClientId=c)):
        info = p.getJointInfo(world.arm, j, physicsClientId=c)
        if info[2] == p.JOINT_REVOLUTE:
            revolute.append((info[1].decode(), info[8], info[9], info[11]))
    assert [r[0] for r in revolute] == list(arm.joint_names)
    np.testing.assert_allclose([r[1] for r in revolute], arm.lower, atol=1e-6)
    np.testing.assert_allclose([r[2] for r in revolute], arm.upper, atol=1e-6)
    np.testing.assert_allclose([r[3] for r in revolute], arm.velocity_limit, atol=1e-6)
    assert "suction_cup" in world.link_index  # the fixed cup link is kept
    # PyBullet's FK of the URDF = our numpy FK (the same file, two parsers), within 1 mm
    kin = ArmKinematics(base_pose=world.cell.arm.T_world_base)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.uniform(-np.pi, np.pi, 6)
        for j, qi in zip(world.q_index, q, strict=True):
            p.resetJointState(world.arm, j, qi, physicsClientId=c)
        np.testing.assert_allclose(world.tool_position(), kin.tool_position(q), atol=1e-3)
    world.reset(3)


def test_the_cell_is_unlike_the_mujoco_one():
    pb, sim = load_cell(PYBULLET_CELL_FILE), sim_cell()
    assert pb.table.top_z != sim.table.top_z
    assert np.linalg.norm(np.subtract(pb.bin.center, sim.bin.center)) > 0.5
    assert not np.allclose(pb.camera.pose, sim.camera.pose, atol=0.1)
    fov = [2 * np.degrees(np.arctan(c.camera.width / 2 / c.camera.K[0])) for c in (pb, sim)]
    assert abs(fov[0] - fov[1]) > 5 and pb.camera.width != pb.camera.height


def test_the_scene_is_built_from_the_cell(world):
    c, cell = world.client, world.cell
    lo, hi = p.getAABB(world.table, physicsClientId=c)
    assert hi[2] == pytest.approx(cell.table.top_z, abs=1e-6)
    assert (lo[0], hi[0]) == pytest.approx(cell.table.x, abs=1e-6)
    walls = [p.getAABB(b, physicsClientId=c) for b in world.bin_parts[1:]]
    for (wlo, whi), (clo, chi) in zip(walls, cell.bin.wall_boxes(cell.table.top_z), strict=True):
        np.testing.assert_allclose(wlo, clo, atol=1e-6)
        np.testing.assert_allclose(whi, chi, atol=1e-6)
    pos = world.object_positions()
    assert pos.shape == (1, 3) and pos[0, 2] > cell.table.top_z  # resting on the table


def test_the_camera_matches_its_intrinsics_and_pose(world):
    """The image has the cell camera's aspect; a world point projected with the cell's K
    (scaled to the image) and T_world_cam lands on that object in the render."""
    img = world.render()
    assert img.dtype == np.uint8 and img.shape == (world.height, world.width, 3)
    cam = world.cell.camera
    assert world.width / world.height == pytest.approx(cam.width / cam.height, rel=0.02)
    np.testing.assert_allclose(world.K, cam.k_for(world.width, world.height))
    # paint the object pure red; the pixel its centre projects to is red
    p.changeVisualShape(world.body_ids[0], -1, textureUniqueId=-1, rgbaColor=[1, 0, 0, 1],
                        physicsClientId=world.client)  # fmt: skip
    top = world.object_positions()[0] + [0, 0, world.objects[0].half_size[2]]
    u, v, _ = cam.project(top[None])[0] * [world.width / cam.width, world.height / cam.height, 1]
    px = world.render()[int(v), int(u)].astype(int)
    assert px[0] > 100 and px[0] > 2 * max(px[1], px[2]), px
    world.reset(3)


def test_the_render_carries_the_cells_lens_distortion():
    """A pinhole render warped by ``distortion_maps`` puts a ray where OpenCV's plumb_bob
    model (the cell's D, what camera_info publishes) projects it; a zero D is no warp."""
    import cv2

    from wm_core.pybullet_world.world import distortion_maps

    k = np.array([[120.0, 0, 80], [0, 120.0, 60], [0, 0, 1]])
    assert distortion_maps(k, (0.0,) * 5, 160, 120) is None
    d = np.array([-0.3, 0.1, 0.002, -0.001, 0.0])
    maps = distortion_maps(k, tuple(d), 160, 120)
    for ray in ([0.45, 0.3, 1.0], [-0.4, -0.35, 1.0]):  # off-centre: the lens matters
        pin = k @ np.array(ray)  # pinhole pixel of the ray
        u, v = np.meshgrid(np.arange(160.0), np.arange(120.0))
        blob = np.exp(-((u - pin[0]) ** 2 + (v - pin[1]) ** 2) / 2.0)  # [H, W]
        img = (255 * blob).astype(np.uint8)[..., None].repeat(3, axis=2)
        out = cv2.remap(img, *maps, cv2.INTER_LINEAR)[..., 0].astype(float)
        w = out / out.sum()  # centroid of the warped blob
        got = np.array([(w * u).sum(), (w * v).sum()])
        want = cv2.projectPoints(np.array([ray]), np.zeros(3), np.zeros(3), k, d)[0].ravel()
        assert np.linalg.norm(pin[:2] - want) > 2.0  # the lens moves this ray visibly
        np.testing.assert_allclose(got, want, atol=0.6)
    # the world renders through the maps of its cell's D
    from dataclasses import replace

    cell = load_cell(PYBULLET_CELL_FILE)
    lens = replace(cell, camera=replace(cell.camera, D=tuple(d)))
    plain, bent = PyBulletWorld(cell=cell), PyBulletWorld(cell=lens)
    try:
        plain.reset(4), bent.reset(4)
        pinhole, seen = plain.render(), bent.render()
        want = cv2.remap(pinhole, *distortion_maps(bent.K, tuple(d), bent.width, bent.height),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        assert np.abs(seen.astype(int) - pinhole).mean() > 1.0
        np.testing.assert_array_equal(seen, want)
    finally:
        plain.close(), bent.close()


def _move_to(world, target: np.ndarray, suction: bool, steps: int = 15) -> None:
    kin = ArmKinematics(base_pose=world.cell.arm.T_world_base)
    q = kin.ik_tool_down(target, world.joint_state()[0], iters=100).q
    for _ in range(steps):
        world.step_joint(q, suction)


def test_suction_grips_only_on_contact_with_suction_on():
    w = PyBulletWorld(PyBulletWorldConfig(n_objects=1, textured_fraction=0.0))
    try:
        w.reset(5)
        obj = w.object_positions()[0].copy()
        top = obj + [0, 0, w.objects[0].half_size[2]]
        _move_to(w, top + [0, 0, 0.06], suction=True)  # suction on, not touching: no grip
        assert not w.grip and not w.touching()
        assert w.observation()["suction_held"][0] == 0.0  # the vacuum switch: nothing held
        _move_to(w, top - [0, 0, 0.004], suction=False)  # touching, suction off: no grip
        assert w.touching() == [0] and not w.grip
        _move_to(w, top + [0, 0, 0.1], suction=False)
        assert w.object_positions()[0, 2] == pytest.approx(obj[2], abs=0.01)  # left behind
        _move_to(w, top - [0, 0, 0.004], suction=True)  # touching with suction on: gripped
        assert list(w.grip) == [0] and w.info()["held"][0]
        assert w.observation()["suction_held"][0] == 1.0  # what the robot itself can tell
        _move_to(w, top + [0, 0, 0.1], suction=True)
        assert w.object_positions()[0, 2] > obj[2] + 0.07  # lifted with the cup
        w.step_joint(w.q_cmd, False)  # suction off: released, it falls back
        assert not w.grip and w.observation()["suction_held"][0] == 0.0
        for _ in range(10):
            w.step_joint(w.q_cmd, False)
        assert w.object_positions()[0, 2] < obj[2] + 0.03
    finally:
        w.close()


def test_scoring_and_safety_events_are_the_mujoco_worlds_keys(world):
    m = world.episode_metrics()
    assert set(m) == {"objects", "cleared", "dropped", "sim_time_s", "steps", "safety"}
    assert set(m["safety"]) == {
        "arm_table_collision",
        "arm_bin_collision",
        "joint_position_limit",
        "joint_velocity_limit",
        "tool_speed",
        "keepout_entry",
    }
    assert m["cleared"] == 0 and sum(m["safety"].values()) == 0
    # an object dropped into the bin (ground truth moved by hand) counts as cleared
    b = world.cell.bin
    p.resetBasePositionAndOrientation(world.body_ids[0], [*b.center, world.cell.table.top_z + 0.05],
                                      [0, 0, 0, 1], physicsClientId=world.client)  # fmt: skip
    terminated, _ = world.step_joint(world.q_cmd, False)
    for _ in range(5):
        terminated, _ = world.step_joint(world.q_cmd, False)
    assert world.episode_metrics()["cleared"] == 1 and terminated
    world.reset(3)
    # past the table's edge: dropped once let go, not while the cup holds it (a cell whose
    # bin is off the table is carried past the edge)
    edge = [world.cell.table.x[1] + 0.1, 0.0, world.cell.table.top_z + 0.2]
    p.resetBasePositionAndOrientation(world.body_ids[0], edge, [0, 0, 0, 1],
                                      physicsClientId=world.client)  # fmt: skip
    world.grip[0] = -1  # held (the status reads who is gripped, not the constraint)
    world._update_status()
    assert not world.info()["dropped"][0]
    del world.grip[0]
    world._update_status()
    assert world.info()["dropped"][0] and world.episode_metrics()["dropped"] == 1
    world.reset(3)


def test_seeds_are_deterministic_and_bad_configs_name_the_field():
    a = PyBulletWorld(PyBulletWorldConfig(n_objects=4))
    try:
        a.reset(11)
        first = [(o.shape, o.half_size, o.pos) for o in a.objects]
        a.reset(11)
        assert [(o.shape, o.half_size, o.pos) for o in a.objects] == first
        a.reset(12)
        assert [(o.shape, o.half_size, o.pos) for o in a.objects] != first
    finally:
        a.close()
    with pytest.raises(ConfigError, match="n_objects"):
        PyBulletWorldConfig(n_objects=7)
    with pytest.raises(ConfigError, match="physics_hz"):
        PyBulletWorldConfig(physics_hz=250.0, control_hz=7.0)
    with pytest.raises(ConfigError, match="table_rgba"):
        PyBulletWorldConfig(table_rgba=(1.0, 0.0, 0.0))


def test_the_calibration_board_rides_on_the_tool_and_is_detected():
    """The board beside the cup (calibration_board) is found in the render with the cell's
    intrinsics, and its pose in the tool frame is the same at two arm poses (rigid)."""
    from wm_core.calib import board_pose
    from wm_core.sim.calibration import BOARD

    w = PyBulletWorld(PyBulletWorldConfig(n_objects=1, image_width=800, calibration_board=True))
    try:
        w.reset(1)
        kin = ArmKinematics(base_pose=w.cell.arm.T_world_base)
        in_tool = []
        for target in ([0.5, 0.0, 0.2], [0.42, 0.12, 0.25]):
            _move_to(w, np.array(target), suction=False, steps=12)
            t_cam_board, corners = board_pose(w.render(), BOARD, w.K, np.zeros(5))
            assert t_cam_board is not None and corners >= 10, corners
            tool = kin.link_frames(w.joint_state()[0])["suction_cup"]
            in_tool.append(np.linalg.inv(tool) @ w.cell.camera.pose @ t_cam_board)
        np.testing.assert_allclose(in_tool[0][:3, 3], in_tool[1][:3, 3], atol=0.005)
    finally:
        w.close()
