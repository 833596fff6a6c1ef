"""The arm in Gazebo: the URDF with ros2_control tags, the controllers file, the suction.

:func:`gazebo_urdf` takes the project's URDF (``wm_core/robot/ur5e_like.urdf``, visuals and
collisions as they are) and adds:

- a ``world`` link and a fixed joint to ``base_link`` at the cell's base pose (the arm is bolted
  to the world; ``ros_gz_sim create`` spawns it at the origin);
- ``<ros2_control>`` with ``gz_ros2_control/GazeboSimSystem``: position command, position and
  velocity state interfaces per arm joint, each starting at the cell's ``home_q``;
- the ``gz_ros2_control`` system plugin pointing at the controllers file
  (:func:`controllers_yaml`: ``joint_state_broadcaster`` and ``arm_controller``, a
  joint_trajectory_controller whose topic is ``/arm_controller/joint_trajectory``, the safety
  node's output);
- ``preserveFixedJoint`` on the flange and suction joints, so ``suction_cup`` stays a link of
  its own (sdformat would otherwise merge it into ``wrist_3_link``);
- **suction**: one gz-sim ``DetachableJoint`` system per object, parent link ``suction_cup``,
  attach and detach topics :func:`attach_topic` / :func:`detach_topic`. Harmonic's system
  welds its child on start, so the relay (``wm_bringup.gz_suction``) detaches every object
  once when it starts; then, on the stack's ``/suction/command`` (std_msgs/Bool) turning true,
  it attaches the object within :data:`SUCTION_RADIUS` of the cup, and on false detaches it.
  This is Gazebo's equivalent of the MuJoCo scene's adhesion actuator.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from wm_core.cell import Workcell
from wm_core.config import ConfigError
from wm_core.robot.kinematics import TOOL_LINK
from wm_core.robot.urdf import DEFAULT_URDF, load_arm, parse_urdf

ARM_CONTROLLER = "arm_controller"
"""The joint_trajectory_controller's name: its topic is ``/arm_controller/joint_trajectory``."""
JOINT_STATE_BROADCASTER = "joint_state_broadcaster"
CONTROLLER_UPDATE_HZ = 500
"""controller_manager update rate (Hz), well above the stack's 10 Hz commands."""
CMD_TIMEOUT_S = 0.5
"""JTC ``cmd_timeout``: the arm holds 0.5 s after the last trajectory ends (launch/README.md,
"Bringing up a real arm": five command periods; covers a dead safety node)."""
SUCTION_RADIUS = 0.05
"""An object whose centre is within this distance (m) of the cup tip is picked up when the
suction turns on (the MuJoCo adhesion acts on contact; the largest objects are 4.5 cm half
size)."""
PRESERVED_FIXED_JOINTS = ("flange_joint", "suction_joint")


def attach_topic(obj: str) -> str:
    """gz (and bridged ROS) topic that welds ``obj`` to the suction cup (std_msgs/Empty)."""
    return f"/wm/gz/suction/{obj}/attach"


def detach_topic(obj: str) -> str:
    """gz (and bridged ROS) topic that releases ``obj`` from the suction cup (std_msgs/Empty)."""
    return f"/wm/gz/suction/{obj}/detach"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def gazebo_urdf(
    cell: Workcell,
    controllers_file: str | Path,
    objects: Sequence[str] = (),
    urdf_path: str | Path = DEFAULT_URDF,
) -> str:
    """The URDF text ``ros_gz_sim create`` spawns and robot_state_publisher publishes (see the
    module docstring). ``objects``: the names of the world's loose objects (suction targets)."""
    text = Path(urdf_path).read_text()
    arm = parse_urdf(text)
    if arm.joint_names != cell.arm.joint_names:
        raise ConfigError(
            f"{cell.source or cell.name}: arm.joint_names {list(cell.arm.joint_names)} are not "
            f"the URDF's {list(arm.joint_names)} (Gazebo drives the URDF's joints)"
        )
    robot = ET.fromstring(text)
    world = ET.Element("link", {"name": "world"})
    fix = ET.Element("joint", {"name": "world_joint", "type": "fixed"})
    _sub(fix, "parent", link="world")
    _sub(fix, "child", link=arm.base_link)
    xyz = " ".join(f"{v:.9g}" for v in cell.arm.base_xyz)
    rpy = " ".join(f"{v:.9g}" for v in cell.arm.base_rpy)
    _sub(fix, "origin", xyz=xyz, rpy=rpy)
    robot.insert(0, fix)
    robot.insert(0, world)

    control = _sub(robot, "ros2_control", name="wm_arm_gz", type="system")
    _sub(_sub(control, "hardware"), "plugin", "gz_ros2_control/GazeboSimSystem")
    for name, q0 in zip(arm.joint_names, cell.arm.home_q, strict=True):
        joint = _sub(control, "joint", name=name)
        _sub(joint, "command_interface", name="position")
        state = _sub(joint, "state_interface", name="position")
        _sub(state, "param", f"{q0:.9g}", name="initial_value")
        _sub(joint, "state_interface", name="velocity")

    for joint in PRESERVED_FIXED_JOINTS:
        _sub(_sub(robot, "gazebo", reference=joint), "preserveFixedJoint", "true")
    plugins = _sub(robot, "gazebo")
    control_plugin = _sub(
        plugins,
        "plugin",
        filename="gz_ros2_control-system",
        name="gz_ros2_control::GazeboSimROS2ControlPlugin",
    )
    _sub(control_plugin, "parameters", str(controllers_file))
    for obj in objects:
        suction = _sub(
            plugins,
            "plugin",
            filename="gz-sim-detachable-joint-system",
            name="gz::sim::systems::DetachableJoint",
        )
        _sub(suction, "parent_link", TOOL_LINK)
        _sub(suction, "child_model", obj)
        _sub(suction, "child_link", "link")
        _sub(suction, "attach_topic", attach_topic(obj))
        _sub(suction, "detach_topic", detach_topic(obj))
        _sub(suction, "suppress_child_warning", "true")
    ET.indent(robot, space="  ")
    head = '<?xml version="1.0"?>\n<!-- Generated by wm_core.gazebo from {}: do not edit. -->\n'
    return head.format(Path(urdf_path).name) + ET.tostring(robot, encoding="unicode") + "\n"


def controllers_yaml(cell: Workcell) -> str:
    """The controller_manager parameters file of the Gazebo arm (joint names: the URDF's)."""
    names = list(load_arm().joint_names)
    if tuple(names) != cell.arm.joint_names:
        raise ConfigError(
            f"{cell.source or cell.name}: arm.joint_names {list(cell.arm.joint_names)} are not "
            f"the URDF's {names}"
        )
    data = {
        "controller_manager": {
            "ros__parameters": {
                "update_rate": CONTROLLER_UPDATE_HZ,
                "use_sim_time": True,
                JOINT_STATE_BROADCASTER: {"type": "joint_state_broadcaster/JointStateBroadcaster"},
                ARM_CONTROLLER: {"type": "joint_trajectory_controller/JointTrajectoryController"},
            }
        },
        JOINT_STATE_BROADCASTER: {"ros__parameters": {"use_sim_time": True}},
        ARM_CONTROLLER: {
            "ros__parameters": {
                "use_sim_time": True,
                "joints": names,
                "command_interfaces": ["position"],
                "state_interfaces": ["position", "velocity"],
                "state_publish_rate": 100.0,
                "action_monitor_rate": 20.0,
                "allow_partial_joints_goal": False,
                # the safety node streams a new trajectory every control period (DESIGN.md,
                # "ros2_control JTC"): hold after cmd_timeout, and start each new trajectory
                # from the last commanded state rather than the measured one
                "cmd_timeout": CMD_TIMEOUT_S,
                "interpolate_from_desired_state": True,
                "constraints": {
                    "stopped_velocity_tolerance": 0.01,
                    "goal_time": 0.0,
                    **{n: {"trajectory": 0.0, "goal": 0.0} for n in names},
                },
            }
        },
    }
    head = "# Generated by wm_core.gazebo (controllers of the Gazebo arm): do not edit.\n"
    return head + yaml.safe_dump(data, sort_keys=False)


def pick_object(
    cup_xyz: np.ndarray, object_xyz: dict[str, np.ndarray], radius: float = SUCTION_RADIUS
) -> str | None:
    """The object the suction picks up: the nearest centre within ``radius`` of the cup tip
    (world frame, m), else None."""
    best, best_d = None, radius
    for name, xyz in object_xyz.items():
        d = float(np.linalg.norm(np.asarray(xyz, float) - np.asarray(cup_xyz, float)))
        if d <= best_d:
            best, best_d = name, d
    return best
