"""The generated Gazebo world agrees with the cell file and with the MuJoCo scene built from it:
table, bin, objects, and the camera's intrinsics, field of view and pose (OpenCV optical frame
in the cell, a +x-looking camera in Gazebo)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from wm_core.cell import sim_cell
from wm_core.config import ConfigError
from wm_core.gazebo.world import (
    GZ_CAMERA_INFO_TOPIC,
    GZ_IMAGE_TOPIC,
    WORLD_NAME,
    WorldObject,
    gazebo_camera_pose,
    horizontal_fov,
    optical_from_gazebo,
    pose_from_text,
    world_sdf,
)
from wm_core.sim import SceneConfig
from wm_core.sim.scene import build_scene_xml, episode_world_objects, sample_objects

SEED = 100000


@pytest.fixture(scope="module")
def cell():
    return sim_cell()


@pytest.fixture(scope="module")
def objects():
    return episode_world_objects(SEED, SceneConfig(n_objects=3))


@pytest.fixture(scope="module")
def world(cell, objects) -> ET.Element:
    root = ET.fromstring(world_sdf(cell, objects).encode())
    assert root.tag == "sdf"
    (w,) = root.findall("world")
    assert w.get("name") == WORLD_NAME
    return w


@pytest.fixture(scope="module")
def mj(cell):
    """The MuJoCo scene of the same cell and episode seed."""
    cfg = SceneConfig(n_objects=3)
    xml = build_scene_xml(cfg, sample_objects(cfg, np.random.default_rng(SEED)), cell)
    return mujoco.MjModel.from_xml_string(xml)


def model(world: ET.Element, name: str) -> ET.Element:
    (m,) = [m for m in world.findall("model") if m.get("name") == name]
    return m


def box_links(m: ET.Element) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """link name -> (centre [3], full size [3]) of a static model's box links."""
    out = {}
    for link in m.findall("link"):
        centre = pose_from_text(link.findtext("pose"))[:3, 3]
        size = np.array([float(v) for v in link.findtext("collision/geometry/box/size").split()])
        vsize = np.array([float(v) for v in link.findtext("visual/geometry/box/size").split()])
        np.testing.assert_array_equal(size, vsize)  # what is drawn is what collides
        out[link.get("name")] = (centre, size)
    return out


def test_world_has_the_systems_the_camera_and_the_models(world, objects):
    plugins = {p.get("name") for p in world.findall("plugin")}
    assert {
        "gz::sim::systems::Physics",
        "gz::sim::systems::SceneBroadcaster",
        "gz::sim::systems::Sensors",
        "gz::sim::systems::UserCommands",
    } <= plugins
    names = [m.get("name") for m in world.findall("model")]
    assert names == ["ground", "table", "bin", "scene_camera", *(o.name for o in objects)]


def test_table_is_the_cells(world, cell, mj):
    (top,) = box_links(model(world, "table")).values()
    centre, size = top
    assert centre[2] + size[2] / 2 == pytest.approx(cell.table.top_z)
    np.testing.assert_allclose(centre[:2] - size[:2] / 2, [cell.table.x[0], cell.table.y[0]])
    np.testing.assert_allclose(centre[:2] + size[:2] / 2, [cell.table.x[1], cell.table.y[1]])
    assert size[2] == pytest.approx(cell.table.thickness)
    g = mj.geom("table")
    np.testing.assert_allclose(centre, mj.geom_pos[g.id])
    np.testing.assert_allclose(size / 2, mj.geom_size[g.id])


def test_bin_is_the_cells_and_the_mujoco_scenes(world, cell, mj):
    links = box_links(model(world, "bin"))
    assert set(links) == {"floor", "wall_n", "wall_s", "wall_e", "wall_w"}
    for name, (centre, size) in links.items():
        g = mj.geom(f"bin_{name}")
        np.testing.assert_allclose(centre, mj.geom_pos[g.id], atol=1e-12)
        np.testing.assert_allclose(size / 2, mj.geom_size[g.id], atol=1e-12)
    b, z0 = cell.bin, cell.table.top_z
    lo = np.min([c - s / 2 for c, s in links.values()], axis=0)
    hi = np.max([c + s / 2 for c, s in links.values()], axis=0)
    outer = b.inner_half + b.wall_thickness
    np.testing.assert_allclose(lo, [b.center[0] - outer, b.center[1] - outer, z0])
    np.testing.assert_allclose(hi, [b.center[0] + outer, b.center[1] + outer, z0 + b.wall_height])
    # the inner faces of the walls are inner_half from the centre
    n_centre, n_size = links["wall_n"]
    assert n_centre[1] - n_size[1] / 2 == pytest.approx(b.center[1] + b.inner_half)
    e_centre, e_size = links["wall_e"]
    assert e_centre[0] - e_size[0] / 2 == pytest.approx(b.center[0] + b.inner_half)
    # the four walls are the cell's obstacle boxes (the brain's), as one footprint
    walls = np.array([np.array(w) for w in cell.bin.wall_boxes(z0)])  # [4, 2, 3]
    np.testing.assert_allclose(walls[:, 0].min(0), lo)
    np.testing.assert_allclose(walls[:, 1].max(0), hi)


def test_objects_are_the_mujoco_episodes(world, objects, mj):
    cfg = SceneConfig(n_objects=3)
    specs = sample_objects(cfg, np.random.default_rng(SEED))
    assert [o.name for o in objects] == [s.name for s in specs]
    for o, s in zip(objects, specs, strict=True):
        m = model(world, o.name)
        pose = pose_from_text(m.findtext("pose"))
        np.testing.assert_allclose(pose[:3, 3], s.pos, atol=1e-9)
        np.testing.assert_allclose(pose[:3, :3], mj_yaw(s.yaw), atol=1e-9)
        mass = float(m.findtext("link/inertial/mass"))  # the MJCF writes 4 decimals
        assert mass == pytest.approx(mj.body(s.name).mass[0], abs=6e-5)
        geom = m.find("link/collision/geometry")
        if s.shape == "box":
            size = [float(v) / 2 for v in geom.findtext("box/size").split()]
            np.testing.assert_allclose(size, s.half_size)
        else:
            assert float(geom.findtext("cylinder/radius")) == pytest.approx(s.half_size[0])
            assert float(geom.findtext("cylinder/length")) == pytest.approx(2 * s.half_size[2])


def mj_yaw(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_camera_intrinsics_and_field_of_view(world, cell, mj):
    cam = cell.camera
    sensor = model(world, "scene_camera").find("link/sensor")
    assert sensor.get("type") == "camera"
    assert sensor.findtext("topic") == GZ_IMAGE_TOPIC
    c = sensor.find("camera")
    assert c.findtext("camera_info_topic") == GZ_CAMERA_INFO_TOPIC
    assert int(c.findtext("image/width")) == cam.width
    assert int(c.findtext("image/height")) == cam.height
    hfov = float(c.findtext("horizontal_fov"))
    assert hfov == pytest.approx(2 * math.atan(cam.width / 2 / cam.K[0]))
    assert hfov == pytest.approx(horizontal_fov(cell))
    # square image, fx = fy: the horizontal field of view is MuJoCo's vertical one (50 deg)
    assert math.degrees(hfov) == pytest.approx(mj.cam_fovy[mj.camera("scene_cam").id])
    k = cam.k_matrix
    lens = c.find("lens/intrinsics")
    for tag, want in (("fx", k[0, 0]), ("fy", k[1, 1]), ("cx", k[0, 2]), ("cy", k[1, 2])):
        assert float(lens.findtext(tag)) == pytest.approx(want)
    d = c.find("distortion")
    k1, k2, p1, p2, k3 = cam.D
    for tag, want in (("k1", k1), ("k2", k2), ("k3", k3), ("p1", p1), ("p2", p2)):
        assert float(d.findtext(tag)) == pytest.approx(want)


def test_camera_pose_round_trips_and_looks_where_the_cell_camera_looks(world, cell, mj):
    pose = pose_from_text(model(world, "scene_camera").findtext("pose"))
    np.testing.assert_allclose(optical_from_gazebo(pose), cell.camera.pose, atol=1e-9)
    optical = cell.camera.pose
    # Gazebo's camera looks along its +x (the optical +z), its +z up is the optical -y
    np.testing.assert_allclose(pose[:3, 0], optical[:3, 2], atol=1e-9)
    np.testing.assert_allclose(pose[:3, 1], -optical[:3, 0], atol=1e-9)
    np.testing.assert_allclose(pose[:3, 2], -optical[:3, 1], atol=1e-9)
    # a point 1 m down Gazebo's viewing axis lands on the principal point; one to its left
    # (Gazebo +y) and above (+z) lands left of and above it in the cell camera's image
    cx, cy = cell.camera.K[2], cell.camera.K[5]
    ahead = pose[:3, 3] + pose[:3, 0]
    np.testing.assert_allclose(cell.camera.project(ahead)[:2], [cx, cy], atol=1e-6)
    u, v, _ = cell.camera.project(ahead + 0.1 * pose[:3, 1] + 0.1 * pose[:3, 2])
    assert u < cx and v < cy
    # the MuJoCo camera (looks along its -z, y up) is the same camera
    c = mj.camera("scene_cam").id
    np.testing.assert_allclose(mj.cam_pos[c], pose[:3, 3], atol=1e-9)
    mj_rot = np.zeros(9)
    mujoco.mju_quat2Mat(mj_rot, mj.cam_quat[c])
    mj_rot = mj_rot.reshape(3, 3)
    np.testing.assert_allclose(-mj_rot[:, 2], pose[:3, 0], atol=1e-6)  # viewing direction
    np.testing.assert_allclose(mj_rot[:, 1], pose[:3, 2], atol=1e-6)  # up


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_camera_conversion_round_trips_for_any_rotation(seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    t = np.eye(4)
    t[:3, :3] = q * np.sign(np.linalg.det(q))
    t[:3, 3] = rng.normal(size=3)
    np.testing.assert_allclose(optical_from_gazebo(gazebo_camera_pose(t)), t, atol=1e-12)


def test_bad_objects_are_refused_with_one_line(cell):
    with pytest.raises(ConfigError, match="shape"):
        WorldObject("o", "sphere", (0.02, 0.02, 0.02), (1, 0, 0, 1), (0.4, 0, 0.02))
    with pytest.raises(ConfigError, match="letters"):
        WorldObject("o/1", "box", (0.02, 0.02, 0.02), (1, 0, 0, 1), (0.4, 0, 0.02))
    o = WorldObject("o", "box", (0.02, 0.02, 0.02), (1, 0, 0, 1), (0.4, 0, 0.02))
    with pytest.raises(ConfigError, match="unique"):
        world_sdf(cell, [o, o])


def test_wm_gazebo_world_writes_the_files(tmp_path, capsys):
    from wm_core.cli import main

    assert main(["gazebo", "world", "--out", str(tmp_path), "--seed", "7", "--objects", "2"]) == 0
    summary = json.loads((tmp_path / "gazebo.json").read_text())
    assert summary["objects"] == ["obj0", "obj1"] and summary["seed"] == 7
    for name in ("world.sdf", "wm_arm.urdf", "controllers.yaml", "bridge.yaml"):
        assert (tmp_path / name).is_file()
    ET.fromstring((tmp_path / "world.sdf").read_bytes())
    assert "world.sdf" in capsys.readouterr().out
    assert main(["gazebo", "world", "--out", str(tmp_path), "--objects", "9"]) == 2
    err = capsys.readouterr().err
    assert "--objects 9 must be in [1, 6]" in err and err.count("\n") == 1


def test_camera_renders_a_smaller_image_with_k_scaled(cell):
    """As the MuJoCo sim node renders ``image_size`` px: the same field of view, K scaled."""
    world = ET.fromstring(world_sdf(cell, (), camera_size=(128, 128), camera_rate_hz=10.0))
    (m,) = [m for m in world.iter("model") if m.get("name") == "scene_camera"]
    sensor = m.find("link/sensor")
    assert float(sensor.findtext("update_rate")) == 10.0
    c = sensor.find("camera")
    assert (int(c.findtext("image/width")), int(c.findtext("image/height"))) == (128, 128)
    assert float(c.findtext("horizontal_fov")) == pytest.approx(horizontal_fov(cell))
    k = cell.camera.k_for(128, 128)
    assert float(c.findtext("lens/intrinsics/fx")) == pytest.approx(k[0, 0])
    assert float(c.findtext("lens/intrinsics/cx")) == pytest.approx(64.0)
    with pytest.raises(ConfigError, match="render size"):
        world_sdf(cell, (), camera_size=(4, 4))
