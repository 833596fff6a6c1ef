"""``wm calibrate collect``: record hand-eye samples while the arm moves the board around.

A small rclpy node. It subscribes to the camera image and ``/joint_states``. In each image
where the board is found (``wm_core.calib.board_pose`` with the camera's intrinsics), it pairs
the board's pose in the camera with the tool pose, the forward kinematics of the latest joint
state. A pair is kept only when:

- the arm has been still for ``settle_s``: no joint moved more than ``still_rad`` between
  joint states in that time, so the image was taken where the joints say (an image from just
  before a move can arrive after the move's joint states);
- the joint state is fresh (``max_state_age_s``);
- the tool has moved ``min_move_m`` or turned ``min_turn_deg`` from every pair kept so far, so
  repeated views of one pose do not count.

Move the arm by hand (freedrive) or with a scripted sweep, pausing at each pose. After
``samples`` pairs it writes the samples file that ``wm calibrate handeye`` reads and stops.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from wm_bringup.msgs import arm_joint_names, joint_state_arrays
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS
from wm_core.calib import BoardSpec, CameraIntrinsics, board_pose
from wm_core.calib.io import write_handeye_samples
from wm_core.robot import ArmKinematics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectConfig:
    board: BoardSpec
    intrinsics: CameraIntrinsics
    camera_info_file: str
    """Written into the samples file (``wm calibrate handeye`` loads it)."""
    samples: int = 15
    """Pairs to collect before writing the file (>= 3; 10-20 recommended)."""
    tool_link: str = "suction_cup"
    """The link the board is fixed to."""
    image_topic: str = "/camera/image_raw"
    min_move_m: float = 0.03
    min_turn_deg: float = 5.0
    still_rad: float = 0.002
    settle_s: float = 0.5
    max_state_age_s: float = 0.2
    min_corners: int = 6


def rgb_image(msg: Image) -> np.ndarray:
    """rgb8/bgr8/mono8 Image -> [H, W, 3] or [H, W] uint8; ValueError naming the problem."""
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1}.get(msg.encoding)
    if channels is None:
        raise ValueError(f"image encoding {msg.encoding!r}: expected rgb8, bgr8 or mono8")
    if msg.step != msg.width * channels or len(msg.data) != msg.height * msg.step:
        raise ValueError(f"image {msg.width}x{msg.height}, step {msg.step}: data does not fit")
    a = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, channels)
    if channels == 1:
        return a[..., 0]
    return a[..., ::-1] if msg.encoding == "bgr8" else a


class CalibrationCollector(Node):
    def __init__(self, cfg: CollectConfig, **kwargs) -> None:
        super().__init__("wm_calibrate_collect", **kwargs)
        self.cfg = cfg
        self.names = arm_joint_names()
        self.kin = ArmKinematics()
        self.q: np.ndarray | None = None  # [6] latest joints
        self.q_time = 0.0
        self.moved_at = time.monotonic()  # last time a joint moved more than still_rad
        self.tools: list[np.ndarray] = []  # [4, 4] each
        self.boards: list[np.ndarray] = []  # [4, 4] each
        self.seen = 0
        self.create_subscription(JointState, "/joint_states", self._on_joints, RELIABLE_QOS)
        self.create_subscription(Image, cfg.image_topic, self._on_image, SENSOR_QOS)

    @property
    def done(self) -> bool:
        return len(self.tools) >= self.cfg.samples

    def _on_joints(self, msg: JointState) -> None:
        try:
            q, _ = joint_state_arrays(msg, self.names)
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint state: {exc}", throttle_duration_sec=2.0)
            return
        now = time.monotonic()
        if self.q is None or np.abs(q - self.q).max() > self.cfg.still_rad:
            self.moved_at = now
        self.q, self.q_time = q, now

    def _on_image(self, msg: Image) -> None:
        c = self.cfg
        now = time.monotonic()
        if self.done or self.q is None or now - self.q_time > c.max_state_age_s:
            return
        if now - self.moved_at < c.settle_s:
            return  # moving, or just stopped: wait until the image surely shows this pose
        try:
            image = rgb_image(msg)
        except ValueError as exc:
            self.get_logger().warning(f"ignored image: {exc}", throttle_duration_sec=2.0)
            return
        intr = c.intrinsics
        t_cam_board, corners = board_pose(image, c.board, intr.K, intr.D)
        self.seen += 1
        if t_cam_board is None or corners < c.min_corners:
            return
        tool = self.kin.link_frames(self.q)[c.tool_link]  # [4, 4]
        for kept in self.tools:
            moved = np.linalg.norm(kept[:3, 3] - tool[:3, 3])
            cos = (np.trace(kept[:3, :3].T @ tool[:3, :3]) - 1) / 2
            turned = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
            if moved < c.min_move_m and turned < c.min_turn_deg:
                return  # a pose we already have
        self.tools.append(tool)
        self.boards.append(t_cam_board)
        self.get_logger().info(f"sample {len(self.tools)}/{c.samples}: {corners} corners")

    def write(self, out: Path) -> Path:
        return write_handeye_samples(
            out,
            np.array(self.tools),
            np.array(self.boards),
            self.cfg.camera_info_file,
            self.cfg.tool_link,
        )


def collect(cfg: CollectConfig, out: Path, timeout_s: float) -> tuple[Path | None, int]:
    """Run the collector until it has ``cfg.samples`` pairs or ``timeout_s`` passes; write the
    samples file when complete. -> (the file or None, pairs collected)."""
    rclpy.init()
    node = CalibrationCollector(cfg)
    try:
        end = time.monotonic() + timeout_s
        while rclpy.ok() and not node.done and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        return (node.write(out) if node.done else None), len(node.tools)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
