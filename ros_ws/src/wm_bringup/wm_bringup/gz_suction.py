"""``gz_suction``: the suction cup in Gazebo (``sim:=gazebo``), the simulator's side.

The MuJoCo world's suction is an adhesion actuator; Gazebo Harmonic has no suction system, so
the cup is gz-sim's ``DetachableJoint``, one per object (``wm_core.gazebo.robot``). This node
drives them from the stack's suction command, exactly what a real suction valve would get:

- on start, it sends every object's detach (Harmonic's system welds its child when it loads);
- ``/suction/command`` (std_msgs/Bool) turning true: the object whose centre is within
  ``wm_core.gazebo.robot.SUCTION_RADIUS`` of the cup tip is attached (its attach topic,
  std_msgs/Empty, bridged to gz); turning false: the attached object is detached.

The cup tip comes from ``/joint_states`` through the arm's forward kinematics (the cell's base
pose); object poses come from gz's ``dynamic_pose/info`` bridged as ``tf2_msgs/TFMessage`` on
``/wm/gz/object_poses``. Those are simulator ground truth: only this node reads them, never a
brain node. ``tf2_msgs`` is not on PyPI, so this node runs on a full ROS 2 install only.
"""

from __future__ import annotations

import sys

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Empty

from wm_bringup.nodekit import RELIABLE_QOS
from wm_bringup.stack import SUCTION_TOPIC
from wm_core.cell import cell_or_default
from wm_core.gazebo import OBJECT_POSES_TOPIC, attach_topic, detach_topic, pick_object
from wm_core.robot.kinematics import TOOL_LINK, ArmKinematics


class GazeboSuction(Node):
    def __init__(self) -> None:
        super().__init__("wm_gz_suction")
        from tf2_msgs.msg import TFMessage  # a full ROS 2 install only

        objects = self.declare_parameter("objects", [""]).value
        self.objects = [str(o) for o in objects if str(o)]
        cell = cell_or_default(self.declare_parameter("cell_file", "").value)
        self.kin = ArmKinematics(base_pose=cell.arm.T_world_base)
        self.names = cell.arm.joint_names
        self.q: np.ndarray | None = None
        self.poses: dict[str, np.ndarray] = {}
        self.on = False
        self.held: str | None = None
        self.attach = {o: self.create_publisher(Empty, attach_topic(o), 10) for o in self.objects}
        self.detach = {o: self.create_publisher(Empty, detach_topic(o), 10) for o in self.objects}
        self.create_subscription(JointState, "/joint_states", self.on_joints, RELIABLE_QOS)
        self.create_subscription(TFMessage, OBJECT_POSES_TOPIC, self.on_poses, 10)
        self.create_subscription(Bool, SUCTION_TOPIC, self.on_command, RELIABLE_QOS)
        self.release_ticks = 10  # detach everything for the first seconds (gz may start late)
        self.create_timer(0.5, self.release_on_start)
        self.get_logger().info(f"suction relay for {self.objects}")

    def release_on_start(self) -> None:
        if self.release_ticks <= 0 or self.held is not None:
            return
        self.release_ticks -= 1
        for pub in self.detach.values():
            pub.publish(Empty())

    def on_joints(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(n in index for n in self.names):
            self.q = np.array([msg.position[index[n]] for n in self.names])

    def on_poses(self, msg) -> None:
        for tf in msg.transforms:
            if tf.child_frame_id in self.attach:
                t = tf.transform.translation
                self.poses[tf.child_frame_id] = np.array([t.x, t.y, t.z])

    def on_command(self, msg: Bool) -> None:
        if bool(msg.data) == self.on:
            return
        self.on = bool(msg.data)
        if not self.on:
            if self.held is not None:
                self.detach[self.held].publish(Empty())
                self.get_logger().info(f"released {self.held}")
            self.held = None
            return
        if self.q is None:
            self.get_logger().warning("suction on before any joint state: nothing picked")
            return
        self.release_ticks = 0
        cup = self.kin.link_frames(self.q)[TOOL_LINK][:3, 3]
        self.held = pick_object(cup, self.poses)
        if self.held is not None:
            self.attach[self.held].publish(Empty())
            self.get_logger().info(f"picked {self.held}")


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=sys.argv if args is None else args)
    node = GazeboSuction()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
