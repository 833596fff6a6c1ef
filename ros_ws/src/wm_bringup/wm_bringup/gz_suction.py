"""``gz_suction``: the suction cup in Gazebo (``sim:=gazebo``), the simulator's side.

The MuJoCo world's suction is an adhesion actuator; Gazebo Harmonic has no suction system, so
the cup is gz-sim's ``DetachableJoint``, one per object (``wm_core.gazebo.robot``). This node
drives them from the stack's suction command, exactly what a real suction valve would get
(the decisions are :class:`wm_core.gazebo.suction.SuctionRelay`'s):

- for its first seconds it sends every object's detach (Harmonic's system welds its child
  when it loads);
- ``/suction/command`` (std_msgs/Bool) turning true: the object whose centre is within
  ``wm_core.gazebo.robot.SUCTION_RADIUS`` of the cup tip is attached (its attach topic,
  std_msgs/Empty, bridged to gz); turning false: the attached object is detached.

The cup tip comes from ``/joint_states`` through the arm's forward kinematics (the cell's base
pose); object poses come from gz's ``dynamic_pose/info`` bridged as ``tf2_msgs/TFMessage`` on
``/wm/gz/object_poses``. Those are simulator ground truth: only this node reads them, never a
brain node. ``tf2_msgs`` is not on PyPI, so this node runs on a full ROS 2 install only.
"""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Empty

from wm_bringup.nodekit import RELIABLE_QOS, run_plain_node
from wm_bringup.stack import SUCTION_TOPIC
from wm_core.cell import cell_or_default
from wm_core.gazebo import OBJECT_POSES_TOPIC, attach_topic, detach_topic
from wm_core.gazebo.suction import Request, SuctionRelay
from wm_core.robot.kinematics import ArmKinematics

RELEASE_PERIOD_S = 0.5
RELEASE_TICKS = 10
"""Every object's detach is sent this many times, every RELEASE_PERIOD_S, after start (gz may
come up after this node)."""


class GazeboSuction(Node):
    def __init__(self) -> None:
        super().__init__("wm_gz_suction")
        from tf2_msgs.msg import TFMessage  # a full ROS 2 install only

        objects = [str(o) for o in self.declare_parameter("objects", [""]).value if str(o)]
        cell = cell_or_default(self.declare_parameter("cell_file", "").value)
        self.relay = SuctionRelay(
            objects, ArmKinematics(base_pose=cell.arm.T_world_base), cell.arm.joint_names
        )
        self.pubs = {
            (kind, o): self.create_publisher(Empty, topic(o), 10)
            for o in objects
            for kind, topic in (("attach", attach_topic), ("detach", detach_topic))
        }
        self.create_subscription(JointState, "/joint_states", self.on_joints, RELIABLE_QOS)
        self.create_subscription(TFMessage, OBJECT_POSES_TOPIC, self.on_poses, 10)
        self.create_subscription(Bool, SUCTION_TOPIC, self.on_command, RELIABLE_QOS)
        self.release_ticks = RELEASE_TICKS
        self.create_timer(RELEASE_PERIOD_S, self.on_release_timer)
        self.get_logger().info(f"suction relay for {objects}")

    def send(self, requests: list[Request]) -> None:
        for kind, obj in requests:
            self.pubs[(kind, obj)].publish(Empty())

    def on_release_timer(self) -> None:
        if self.release_ticks > 0:
            self.release_ticks -= 1
            self.send(self.relay.release_all())

    def on_joints(self, msg: JointState) -> None:
        self.relay.joints(msg.name, msg.position)

    def on_poses(self, msg: Any) -> None:  # tf2_msgs/TFMessage
        self.relay.object_positions(
            {
                tf.child_frame_id: (
                    tf.transform.translation.x,
                    tf.transform.translation.y,
                    tf.transform.translation.z,
                )
                for tf in msg.transforms
            }
        )

    def on_command(self, msg: Bool) -> None:
        requests = self.relay.command(msg.data)
        if requests:
            self.release_ticks = 0  # the stack is working: no more start-up releases
            self.get_logger().info(f"suction: {requests}")
        self.send(requests)


def main(args: list[str] | None = None) -> None:
    run_plain_node(GazeboSuction, args, freeze=False)


if __name__ == "__main__":
    main()
