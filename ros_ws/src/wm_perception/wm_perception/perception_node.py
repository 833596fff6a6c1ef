"""``wm_perception``: camera image -> JEPA latent on ``/wm/latent``.

The latent goes out as ``sensor_msgs/Image`` with encoding ``32FC1``: height N (patches), width
D (channels), little-endian float32 rows, and the *source image's* header (stamp and frame), so
the planner can tell how old the information is. When the model directory's object readout
reads a finer encoder stage than the latent (``wm train readout --source stage3``), that map
never leaves this node: the readout's raw map (4 x G' x G', no camera in it) follows the
latent's N rows in the same message (``wm_core.models.readout.pack_map``), so the planner gets
both from one image, atomically. Images that are not rgb8/bgr8, whose data does
not match height x step, or that are blank are dropped with a (throttled) log line; an image of
another size is resized to the encoder's input with ``cv2.INTER_AREA`` (logged once).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image
from wm_bringup.nodekit import (
    BACKEND_PARAMS,
    SENSOR_QOS,
    Param,
    StartupError,
    WmNode,
    backend_config_of,
    guarded_transition,
    run_node,
)

from wm_core.models.readout import READOUT_SOURCES, pack_map


def default_model_dir() -> Path:
    from wm_core.plan.policy import DEFAULT_MODEL

    return DEFAULT_MODEL


def image_to_rgb(msg: Image) -> np.ndarray:
    """rgb8/bgr8 Image -> [H, W, 3] uint8 RGB; ValueError naming what is wrong."""
    enc = msg.encoding.lower()
    if enc not in ("rgb8", "bgr8"):
        raise ValueError(f"encoding {msg.encoding!r} (expected rgb8 or bgr8)")
    h, w, step = msg.height, msg.width, msg.step
    if h == 0 or w == 0 or step < 3 * w:
        raise ValueError(f"bad geometry {w}x{h}, step {step}")
    if len(msg.data) != h * step:
        raise ValueError(f"corrupt: {len(msg.data)} data bytes, expected step*height={h * step}")
    rows = np.frombuffer(msg.data, np.uint8).reshape(h, step)  # [H, step]
    img = rows[:, : 3 * w].reshape(h, w, 3)  # [H, W, 3]
    if enc == "bgr8":
        img = img[:, :, ::-1]
    if img.std() < 1.0:
        raise ValueError("blank (uniform) image")
    return img


def latent_msg(z: np.ndarray, source: Image, readout_map: np.ndarray | None = None) -> Image:
    """latent [1, N, D] or [N, D] (+ the readout's raw map [1, 4, G', G']) -> 32FC1 Image
    (N rows, or N + 4*G'*G'/D, of D columns) with the source header."""
    z2 = np.asarray(z, "<f4").reshape(z.shape[-2], z.shape[-1])  # [N, D]
    if readout_map is not None:
        z2 = pack_map(z2, readout_map).astype("<f4")  # [N + R, D]
    msg = Image(height=z2.shape[0], width=z2.shape[1], encoding="32FC1", is_bigendian=0)
    msg.header = source.header
    msg.step = 4 * z2.shape[1]
    msg.data = z2.tobytes()
    return msg


class PerceptionNode(WmNode):
    PARAMS = (
        Param("model_dir", "", "Model directory (model.pt); empty: the shipped models/default."),
        *BACKEND_PARAMS,
        Param("threads", 1, "CPU threads for inference.", 1, 64),
        Param("log_throttle_s", 2.0, "Minimum seconds between repeated warnings.", 0.0, 600.0),
    )

    def __init__(self, node_name: str = "wm_perception", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.backend: Any = None  # the world model on the chosen backend (wm_core.deploy)
        self.readout: Any = None  # the object readout, when it reads a finer encoder stage
        self.stage: int | None = None
        self.stats = {"encoded": 0, "rejected": 0, "resized": 0, "encode_ms": 0.0}

    def model_dir(self) -> Path:
        d = self.values()["model_dir"]
        return Path(d) if d else default_model_dir()

    @guarded_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from wm_core.deploy.backends import BackendUnavailableError, backend_name, make_backend

        v = self.values()
        try:
            self.backend = make_backend(self.model_dir(), backend_config_of(v, v["threads"]))
        except BackendUnavailableError as exc:
            raise StartupError(str(exc)) from None
        self.backend_name = backend_name(self.backend)
        self.readout, self.stage = self._fine_readout()
        self.throttle = v["log_throttle_s"]
        self.pub = self.create_lifecycle_publisher(Image, "/wm/latent", SENSOR_QOS)
        self.sub = self.create_subscription(Image, "/camera/image_raw", self._on_image, SENSOR_QOS)
        self.get_logger().info(
            f"encoder ready: backend {self.backend_name}, input {self.backend.cfg.image_size} px"
        )
        return TransitionCallbackReturn.SUCCESS

    def _fine_readout(self) -> tuple[Any, int | None]:
        """The model directory's object readout, when it reads a finer encoder stage than the
        latent (then this node computes its raw map); else (None, None)."""
        from wm_core.models.checkpoint import CheckpointError
        from wm_core.train.readout import load_readout

        path = self.model_dir() / "readout.pt"
        if not path.is_file():
            return None, None  # the planner names the missing readout
        try:
            readout = load_readout(path, self.backend)
        except CheckpointError as exc:
            raise StartupError(str(exc)) from None
        stage = READOUT_SOURCES[readout.source]
        if stage is None:
            return None, None
        if not hasattr(self.backend, "encode_tap"):
            raise StartupError(
                f"{path} reads encoder stage {stage}; the {self.backend_name} backend gives "
                "only the latent: use backend torch"
            )
        self.get_logger().info(
            f"object readout reads encoder stage {stage} ({readout.grid}x{readout.grid}): "
            "its map goes out with the latent"
        )
        return readout, stage

    @guarded_transition
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_subscription(self.sub)
        self.destroy_lifecycle_publisher(self.pub)
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        if self.backend is not None and hasattr(self.backend, "close"):
            self.backend.close()
        self.backend = None
        self.readout, self.stage = None, None

    def _on_image(self, msg: Image) -> None:
        if not self.active or self.backend is None:
            return
        try:
            img = image_to_rgb(msg)
        except ValueError as exc:
            self.stats["rejected"] += 1
            self.get_logger().warning(
                f"dropped camera image: {exc}", throttle_duration_sec=self.throttle
            )
            return
        s = self.backend.cfg.image_size
        if img.shape[:2] != (s, s):
            if self.stats["resized"] == 0:
                self.get_logger().info(
                    f"resizing {img.shape[1]}x{img.shape[0]} images to {s}x{s} (INTER_AREA)"
                )
            self.stats["resized"] += 1
            img = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA)
        x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32) / 255.0  # [1,3,S,S]
        t0 = time.perf_counter()
        raw = None
        with torch.no_grad():
            if self.stage is None:
                z = self.backend.encode(torch.from_numpy(x)).numpy()  # [1, N, D]
            else:
                zt, f = self.backend.encode_tap(torch.from_numpy(x), self.stage)
                z, raw = zt.numpy(), self.readout.raw(f).numpy()  # [1, N, D], [1, 4, G', G']
        self.stats["encode_ms"] = (time.perf_counter() - t0) * 1e3
        self.stats["encoded"] += 1
        if self.stats["encoded"] == 1:  # when the camera's frames started flowing, in the log
            self.get_logger().info(f"first camera image encoded ({msg.width}x{msg.height})")
        self.publish(self.pub, latent_msg(z, msg, raw))

    def diagnostics(self):
        level, message, kv = super().diagnostics()
        kv |= {k: (f"{v:.1f}" if isinstance(v, float) else v) for k, v in self.stats.items()}
        if self.backend is not None:
            kv["backend"] = self.backend_name
        return level, message, kv


NODE_CLASS = PerceptionNode


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(PerceptionNode, sys.argv if args is None else args))


if __name__ == "__main__":
    main()
