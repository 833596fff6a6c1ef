"""The arm in Gazebo: the URDF's visuals, the ros2_control variant (agrees with the URDF and the
MuJoCo model on link lengths, joint axes and limits), the controllers file, the suction systems
and the bridge, which names only topics the stack uses."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest
import yaml
from wm_bringup import stack as stack_mod

from wm_core.cell import sim_cell
from wm_core.gazebo import (
    OBJECT_POSES_TOPIC,
    attach_topic,
    bridge_config,
    detach_topic,
    pick_object,
    write_gazebo_files,
)
from wm_core.gazebo.robot import CMD_TIMEOUT_S, controllers_yaml, gazebo_urdf
from wm_core.robot import load_arm
from wm_core.robot.urdf import DEFAULT_URDF, parse_urdf
from wm_core.sim import SceneConfig
from wm_core.sim.scene import build_scene_xml, episode_world_objects

OBJECTS = ("obj0", "obj1", "obj2")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    out = tmp_path_factory.mktemp("gz")
    return write_gazebo_files(sim_cell(), out, episode_world_objects(100000))


@pytest.fixture(scope="module")
def gz_urdf(files) -> str:
    return files.urdf.read_text()


@pytest.fixture(scope="module")
def mj():
    xml = build_scene_xml(SceneConfig(n_objects=1), episode_world_objects(0, SceneConfig(1)))
    return mujoco.MjModel.from_xml_string(xml)


def _shape(el: ET.Element) -> tuple:
    origin = el.find("origin")
    cyl = el.find("geometry/cylinder")
    return (
        None if origin is None else (origin.get("xyz"), origin.get("rpy")),
        cyl.get("radius"),
        cyl.get("length"),
    )


def test_every_link_draws_what_collides():
    root = ET.fromstring(DEFAULT_URDF.read_text())
    drawn = 0
    for link in root.findall("link"):
        collisions = [_shape(c) for c in link.findall("collision")]
        assert [_shape(v) for v in link.findall("visual")] == collisions, link.get("name")
        drawn += len(collisions)
    assert drawn == 8  # every link but tool0 (a frame)


def test_gazebo_urdf_agrees_with_the_urdf_and_mujoco(gz_urdf, mj):
    arm, gz = load_arm(), parse_urdf(gz_urdf)
    assert gz.base_link == "world"
    world_joint = gz.joints[0]
    assert (world_joint.name, world_joint.type, world_joint.child) == (
        "world_joint",
        "fixed",
        arm.base_link,
    )
    np.testing.assert_allclose(world_joint.origin, sim_cell().arm.T_world_base)
    assert gz.joint_names == arm.joint_names == sim_cell().arm.joint_names
    for a, g in zip(arm.joints, gz.joints[1:], strict=True):
        assert (a.name, a.type, a.parent, a.child) == (g.name, g.type, g.parent, g.child)
        np.testing.assert_allclose(g.xyz, a.xyz)  # link lengths
        np.testing.assert_allclose(g.rpy, a.rpy)
        if a.type != "revolute":
            continue
        np.testing.assert_allclose(g.axis, a.axis)
        assert (g.lower, g.upper, g.velocity, g.effort) == (a.lower, a.upper, a.velocity, a.effort)
        # the MuJoCo model (generated from the URDF) has the same joint
        jid = mj.joint(g.name).id
        np.testing.assert_allclose(mj.jnt_axis[jid], g.axis)
        np.testing.assert_allclose(mj.jnt_range[jid], [g.lower, g.upper], atol=1e-6)
        np.testing.assert_allclose(mj.body_pos[mj.body(g.child).id], g.xyz)
    for name, link in arm.links.items():
        assert [c.radius for c in gz.links[name].collisions] == [c.radius for c in link.collisions]


def test_ros2_control_tags(gz_urdf, files):
    root = ET.fromstring(gz_urdf)
    (control,) = root.findall("ros2_control")
    assert control.findtext("hardware/plugin") == "gz_ros2_control/GazeboSimSystem"
    joints = control.findall("joint")
    assert tuple(j.get("name") for j in joints) == load_arm().joint_names
    for joint, q0 in zip(joints, sim_cell().arm.home_q, strict=True):
        assert [c.get("name") for c in joint.findall("command_interface")] == ["position"]
        states = joint.findall("state_interface")
        assert [s.get("name") for s in states] == ["position", "velocity"]
        assert float(states[0].findtext("param[@name='initial_value']")) == pytest.approx(q0)
    plugins = root.findall("gazebo/plugin")
    (ros2_control,) = [p for p in plugins if p.get("filename") == "gz_ros2_control-system"]
    assert ros2_control.findtext("parameters") == str(files.controllers.resolve())
    preserved = {g.get("reference") for g in root.findall("gazebo[@reference]")}
    assert preserved == {"flange_joint", "suction_joint"}  # suction_cup stays a link


def test_suction_is_one_detachable_joint_per_object(gz_urdf, files):
    assert files.objects == OBJECTS
    root = ET.fromstring(gz_urdf)
    suction = [
        p for p in root.findall("gazebo/plugin") if p.get("name").endswith("DetachableJoint")
    ]
    assert [p.findtext("child_model") for p in suction] == list(OBJECTS)
    for p in suction:
        obj = p.findtext("child_model")
        assert p.findtext("parent_link") == "suction_cup"
        assert p.findtext("attach_topic") == attach_topic(obj)
        assert p.findtext("detach_topic") == detach_topic(obj)
    world = ET.fromstring(files.world.read_bytes())
    for obj in OBJECTS:  # the child link exists in the world
        (m,) = [m for m in world.iter("model") if m.get("name") == obj]
        assert m.find("link").get("name") == "link"


def test_controllers_yaml_matches_the_urdf_and_the_stack(files):
    data = yaml.safe_load(files.controllers.read_text())
    manager = data["controller_manager"]["ros__parameters"]
    assert manager["joint_state_broadcaster"]["type"].startswith("joint_state_broadcaster/")
    assert manager["arm_controller"]["type"] == (
        "joint_trajectory_controller/JointTrajectoryController"
    )
    jtc = data["arm_controller"]["ros__parameters"]
    assert tuple(jtc["joints"]) == load_arm().joint_names
    assert jtc["command_interfaces"] == ["position"]
    # the controller's topic is what the safety node publishes
    assert stack_mod.ARM_COMMAND_TOPIC == "/arm_controller/joint_trajectory"
    # an MPC streaming trajectories: hold when they stop, continue from the commanded state
    assert jtc["cmd_timeout"] == CMD_TIMEOUT_S > 0
    assert jtc["interpolate_from_desired_state"] is True
    assert set(jtc["constraints"]) - {"stopped_velocity_tolerance", "goal_time"} == set(
        load_arm().joint_names
    )


def test_bridge_names_only_topics_the_stack_uses(files):
    entries = yaml.safe_load(files.bridge.read_text())
    assert entries == bridge_config(OBJECTS)
    gz = stack_mod.describe("sim", sim="gazebo")
    assert not any(spec.remappings for spec in gz.running())  # the default topic names
    brain_inputs = {stack_mod.IMAGE_TOPIC, stack_mod.CAMERA_INFO_TOPIC, "/clock"}
    to_ros = {e["ros_topic_name"]: e for e in entries if e["direction"] == "GZ_TO_ROS"}
    assert set(to_ros) == brain_inputs | {OBJECT_POSES_TOPIC}
    assert to_ros[stack_mod.IMAGE_TOPIC]["ros_type_name"] == "sensor_msgs/msg/Image"
    assert to_ros[stack_mod.CAMERA_INFO_TOPIC]["ros_type_name"] == "sensor_msgs/msg/CameraInfo"
    assert to_ros["/clock"]["ros_type_name"] == "rosgraph_msgs/msg/Clock"
    to_gz = [e["ros_topic_name"] for e in entries if e["direction"] == "ROS_TO_GZ"]
    assert sorted(to_gz) == sorted(t for o in OBJECTS for t in (attach_topic(o), detach_topic(o)))
    # no second publisher of what ros2_control or the stack publishes
    for topic in ("/joint_states", stack_mod.ARM_COMMAND_TOPIC, *stack_mod.STACK_OWN_TOPICS):
        if topic != "/clock":
            assert topic not in to_ros
    assert {e["direction"] for e in entries} == {"GZ_TO_ROS", "ROS_TO_GZ"}
    # the relay's topics are what it subscribes and publishes (wm_bringup.gz_suction)
    from wm_bringup import gz_suction

    assert gz_suction.OBJECT_POSES_TOPIC == OBJECT_POSES_TOPIC
    assert gz_suction.SUCTION_TOPIC == stack_mod.SUCTION_TOPIC


def test_no_objects_no_suction_topics():
    assert [e["ros_topic_name"] for e in bridge_config(())] == [
        "/clock",
        stack_mod.IMAGE_TOPIC,
        stack_mod.CAMERA_INFO_TOPIC,
    ]


def test_pick_object_takes_the_nearest_within_reach():
    poses = {"a": np.array([0.5, 0.0, 0.02]), "b": np.array([0.53, 0.0, 0.02])}
    assert pick_object(np.array([0.52, 0.0, 0.05]), poses) == "b"
    assert pick_object(np.array([0.5, 0.0, 0.05]), poses) == "a"
    assert pick_object(np.array([0.5, 0.2, 0.05]), poses) is None
    assert pick_object(np.zeros(3), {}) is None


def test_joint_names_that_are_not_the_urdfs_are_refused(tmp_path):
    from dataclasses import replace

    from wm_core.config import ConfigError

    cell = sim_cell()
    other = replace(cell, arm=replace(cell.arm, joint_names=tuple(f"j{i}" for i in range(6))))
    with pytest.raises(ConfigError, match="not the URDF's"):
        gazebo_urdf(other, tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="not the URDF's"):
        controllers_yaml(other)
