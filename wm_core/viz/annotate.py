"""The annotated episode video: what the robot saw, believed, planned and was allowed to do.

Each frame is one control step (:class:`~wm_core.viz.record.StepRecord`), drawn with OpenCV
after the episode, never inside the control loop:

- panel 1: the policy's own camera image (upscaled, nearest-neighbour: its real resolution
  shows) with the detected objects (ring radius and label: objectness), the chosen target, the
  planned tool path of the executed plan and the measured tool, all projected with the cell's
  camera model (``wm_core.cell.Camera``): what the robot *believes* the camera is. Where the
  overlay misses the objects, the camera model (or the readout) is off;
- panel 2 (when the records carry one): a higher-resolution render of the same camera for
  people, with the same overlay (a policy without a camera, such as the oracle, gets this
  panel only);
- a header line: step, time, task phase, the safety filter's verdict, surprise, hold;
- a strip chart under the panels: the surprise score over the whole episode with its
  threshold, the holds shaded, one tick per step coloured by the filter's verdict, and a
  cursor at the current step.

Colours are RGB. Frame size: ``panel_px * panels`` wide, ``panel_px + strip_px`` high (both
multiples of 16, as H.264 wants).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wm_core.cell import Camera, Workcell
from wm_core.config import bounded, check_fields
from wm_core.robot import ArmKinematics
from wm_core.viz.record import NO_VERDICT, StepRecord

log = logging.getLogger(__name__)

DETECTION_RGB = (0, 230, 255)
TARGET_RGB = (255, 0, 255)
PATH_RGB = (40, 220, 60)
TOOL_RGB = (255, 255, 255)
SURPRISE_RGB = (255, 160, 0)
HOLD_RGB = (120, 60, 0)
VERDICT_RGB = {
    "ok": (40, 200, 40),
    "clamped": (240, 200, 0),
    "rejected": (230, 30, 30),
    "held": (150, 150, 150),
    NO_VERDICT: (60, 60, 60),
}
HEADER_PX = 22
"""Height of the text header drawn over the top of each panel."""


@dataclass(frozen=True)
class AnnotateConfig:
    """Layout of the annotated video."""

    panel_px: int = bounded(512, 128, 2048, integer=True)
    """Side (px) of each square image panel; a multiple of 16."""
    strip_px: int = bounded(128, 64, 512, integer=True)
    """Height (px) of the surprise / verdict strip chart; a multiple of 16."""
    surprise_threshold: float = bounded(6.0, 0.0, 1e6)
    """The surprise score above which the policy holds (drawn as a dashed line)."""
    fps: float = bounded(10.0, 0.1, 240.0)
    """Frames per second of the video (the control rate plays it in real time)."""

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("panel_px", "strip_px"):
            if getattr(self, name) % 16:
                raise ValueError(f"{name}={getattr(self, name)} must be a multiple of 16")


def project_to_panel(
    camera: Camera, points: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """World points [..., 3] -> pixel (u, v) [..., 2] in a ``size`` x ``size`` panel showing
    the camera's image resized to a square (as the model sees it), and a mask [...] of the
    points in front of the camera."""
    uvz = camera.project(np.asarray(points, float))  # [..., 3] at the native resolution
    scale = np.array([size / camera.width, size / camera.height])
    return uvz[..., :2] * scale, uvz[..., 2] > 1e-3


def _px(uv: np.ndarray) -> tuple[int, int]:
    return int(round(float(uv[0]))), int(round(float(uv[1])))


class EpisodeAnnotator:
    """Draws the frames of one episode's records (see the module docstring)."""

    def __init__(
        self,
        records: Sequence[StepRecord],
        cell: Workcell,
        cfg: AnnotateConfig | None = None,
    ):
        if not records:
            raise ValueError("no step records to annotate")
        self.records, self.cell = records, cell
        self.cfg = cfg = cfg or AnnotateConfig()
        self.kin = ArmKinematics(base_pose=cell.arm.T_world_base)
        # which panels: the policy's camera (if it had one), the render for people (if any)
        self.sources = [
            name
            for name in ("image", "render")
            if any(getattr(r, name) is not None for r in records)
        ] or ["image"]
        if all(r.image is None and r.render is None for r in records):
            log.warning("no image in the records: the panel shows the overlay only")
        self.panels = len(self.sources)
        self.width = cfg.panel_px * self.panels
        self.height = cfg.panel_px + cfg.strip_px
        self._strip = self._strip_background()  # [strip_px, width, 3]

    # ------------------------------------------------------------------ frames
    def frames(self) -> Iterator[np.ndarray]:
        """Yield the frames [height, width, 3] uint8 RGB, one per record."""
        for i in range(len(self.records)):
            yield self.frame(i)

    def frame(self, i: int) -> np.ndarray:
        r, s = self.records[i], self.cfg.panel_px
        out = np.zeros((self.height, self.width, 3), np.uint8)
        for k, name in enumerate(self.sources):
            # the policy's camera upscaled nearest-neighbour (its real resolution shows)
            interp = cv2.INTER_NEAREST if name == "image" else cv2.INTER_LINEAR
            out[:s, k * s : (k + 1) * s] = self.panel(getattr(r, name), r, interp)
        out[s:] = self._strip
        x = self._x(i)
        cv2.line(out, (x, s), (x, self.height - 1), (255, 255, 255), 1)
        return out

    def panel(self, image: np.ndarray | None, r: StepRecord, interp: int) -> np.ndarray:
        """One square panel: the image resized to ``panel_px`` plus the overlay."""
        s = self.cfg.panel_px
        if image is None:
            img = np.full((s, s, 3), 40, np.uint8)
        else:
            if image.shape[0] > s:
                interp = cv2.INTER_AREA
            img = np.ascontiguousarray(cv2.resize(image, (s, s), interpolation=interp))
        self._overlay(img, r)
        self._header(img, r)
        return img

    def _overlay(self, img: np.ndarray, r: StepRecord) -> None:
        cam, s = self.cell.camera, self.cfg.panel_px
        k = s / 512.0  # line widths and radii scale with the panel
        lw = max(1, int(round(2 * k)))
        if r.tool_path is not None and len(r.tool_path):
            uv, front = project_to_panel(cam, r.tool_path, s)  # [H, 2], [H]
            pts = np.round(uv[front]).astype(np.int32)
            if len(pts) > 1:
                cv2.polylines(img, [pts[:, None, :]], False, PATH_RGB, lw, cv2.LINE_AA)
            for p in pts:
                cv2.circle(img, tuple(p), max(2, int(3 * k)), PATH_RGB, -1, cv2.LINE_AA)
        tool = self.kin.tool_position(r.joint_pos)  # [3] measured (FK of the joint encoders)
        uv, front = project_to_panel(cam, tool[None], s)
        if front[0]:
            cv2.circle(img, _px(uv[0]), max(3, int(5 * k)), TOOL_RGB, lw, cv2.LINE_AA)
        if len(r.detections):
            uv, front = project_to_panel(cam, r.detections[:, :3], s)  # [M, 2], [M]
            for (u, v), ok, p in zip(uv, front, r.detections[:, 3], strict=True):
                if not ok:
                    continue
                c = _px((u, v))
                cv2.circle(img, c, max(2, int(4 * k)), DETECTION_RGB, -1, cv2.LINE_AA)
                radius = max(4, int((8 + 14 * float(np.clip(p, 0, 1))) * k))
                cv2.circle(img, c, radius, DETECTION_RGB, lw, cv2.LINE_AA)
                cv2.putText(
                    img,
                    f"{p:.2f}",
                    (c[0] + radius + 2, c[1] + 4),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * max(k, 0.75),
                    DETECTION_RGB,
                    1,
                    cv2.LINE_AA,
                )
        if r.target is not None:
            uv, front = project_to_panel(cam, r.target[None], s)
            if front[0]:
                c, m = _px(uv[0]), max(6, int(14 * k))
                cv2.drawMarker(img, c, TARGET_RGB, cv2.MARKER_TILTED_CROSS, 2 * m, lw, cv2.LINE_AA)

    def _header(self, img: np.ndarray, r: StepRecord) -> None:
        s = self.cfg.panel_px
        cv2.rectangle(img, (0, 0), (s - 1, HEADER_PX - 1), (0, 0, 0), -1)
        phase = r.phase or "-"
        text = f"step {r.step}  t {r.t:5.1f} s  {phase}  surprise {r.surprise:.2f}"
        if r.hold:
            text += f"  HOLD ({r.hold})"
        cv2.putText(img, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1)
        label = r.verdict or "no verdict"
        (w, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)
        x0 = s - w - 10
        cv2.rectangle(img, (x0 - 4, 2), (s - 3, HEADER_PX - 3), VERDICT_RGB[r.verdict], -1)
        cv2.putText(img, label, (x0, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1)

    # ------------------------------------------------------------------ the strip chart
    def _x(self, i: int) -> int:
        n = len(self.records)
        return int(round(4 + (self.width - 8) * (i / max(n - 1, 1))))

    def _strip_background(self) -> np.ndarray:
        """The static part of the strip chart (the whole episode's surprise, holds, verdicts)."""
        cfg, w, n = self.cfg, self.width, len(self.records)
        strip = np.full((cfg.strip_px, w, 3), 20, np.uint8)
        tick_h = 12
        top, bottom = 16, cfg.strip_px - tick_h - 6  # the chart's y range (px)
        score = np.array([r.surprise for r in self.records])  # [n]
        hi = max(float(score.max(initial=0.0)), cfg.surprise_threshold, 1e-6) * 1.1

        def y(v: float) -> int:
            return int(round(bottom - (bottom - top) * min(max(v, 0.0), hi) / hi))

        half = max(1, (self._x(1) - self._x(0)) // 2) if n > 1 else 2
        for i, r in enumerate(self.records):
            x = self._x(i)
            if r.hold:
                cv2.rectangle(strip, (x - half, top), (x + half, bottom), HOLD_RGB, -1)
            cv2.rectangle(
                strip,
                (x - half, cfg.strip_px - tick_h - 2),
                (x + half, cfg.strip_px - 3),
                VERDICT_RGB[r.verdict],
                -1,
            )
        yt = y(cfg.surprise_threshold)
        for x0 in range(4, w - 4, 12):
            cv2.line(strip, (x0, yt), (min(x0 + 6, w - 4), yt), (200, 60, 60), 1)
        pts = np.array([[self._x(i), y(v)] for i, v in enumerate(score)], np.int32)
        cv2.polylines(strip, [pts[:, None, :]], False, SURPRISE_RGB, 1, cv2.LINE_AA)
        legend = (
            f"surprise (max {score.max(initial=0.0):.2f}, threshold {cfg.surprise_threshold:g});"
            "  shaded: hold;  ticks: filter verdict ok/clamped/rejected/held"
        )
        cv2.putText(strip, legend, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (220, 220, 220), 1)
        return strip


def write_annotated_video(
    records: Sequence[StepRecord],
    cell: Workcell,
    path: Path,
    cfg: AnnotateConfig | None = None,
) -> tuple[int, int, int]:
    """Draw and encode the episode (H.264 mp4); returns (frames, width, height)."""
    import imageio.v2 as imageio

    ann = EpisodeAnnotator(records, cell, cfg)
    n = 0
    with imageio.get_writer(
        path, fps=ann.cfg.fps, codec="libx264", quality=7, macro_block_size=16
    ) as w:
        for f in ann.frames():
            w.append_data(f)
            n += 1
    log.info("annotated video: %d frames %dx%d -> %s", n, ann.width, ann.height, path)
    return n, ann.width, ann.height
