"""Configuration of the table-clearing world."""

from __future__ import annotations

from dataclasses import dataclass

from wm_core.config import ConfigError, bounded, check_fields, check_range
from wm_core.robot.limits import CONTROL_HZ, MAX_TOOL_STEP

MIN_OBJECTS, MAX_OBJECTS = 1, 6


@dataclass(frozen=True)
class SceneConfig:
    """Everything that defines one family of table-clearing episodes in a given cell (the
    cell's geometry, keep-out boxes included, is in the cell file: ``wm_core.cell``).

    All randomisation is drawn from the episode seed passed to ``reset``.
    """

    n_objects: int = bounded(3, MIN_OBJECTS, MAX_OBJECTS, integer=True)
    """Objects on the table per episode, 1-6."""
    object_half_size: tuple[float, float] = (0.02, 0.032)
    """Range (m) of object half-extents (box half-sides, cylinder radius/half-height)."""
    light_jitter: float = bounded(0.0, 0.0, 1.0)
    """Fractional jitter of light intensity, and of light position in units of 0.5 m, 0-1."""
    camera_jitter_deg: float = bounded(0.0, 0.0, 15.0)
    """Scene camera orientation jitter: rotation about a random axis by up to this many deg."""
    camera_shift: float = bounded(0.0, 0.0, 0.2)
    """Scene camera position jitter (m): each axis moves by up to this much."""
    appearance_jitter: float = bounded(0.0, 0.0, 1.0)
    """Domain randomisation of appearance, 0-1: the table's colour and texture, the floor's,
    the bin's and the arm's colours, textured objects and tinted lights (0: the nominal look;
    1: the full range; ``wm_core.sim.scene.draw_appearance``)."""
    table_height_jitter: float = bounded(0.0, 0.0, 0.1)
    """Table height jitter (m): the table, the bin, the objects and the workspace move up or
    down by up to this much; the arm and camera stay."""
    image_size: int = bounded(128, 16, 1024, integer=True)
    """Side (px) of the square RGB observation."""
    render_images: bool = True
    """Render camera images into observations. Off for the oracle and scoring (faster)."""
    wrist_camera: bool = False
    """Also render a wrist camera image (``obs['wrist_image']``)."""
    physics_dt: float = 0.002
    """Physics time step (s); at most 0.002 (>= 500 Hz)."""
    control_hz: float = bounded(10.0, *CONTROL_HZ)
    """Agent (action) rate in Hz; the physics steps per action are 1/(control_hz*physics_dt)."""
    max_episode_s: float = bounded(90.0, 1.0, 3600.0)
    """Episode time limit in simulated seconds."""
    max_tool_step: float = bounded(0.018, *MAX_TOOL_STEP)
    """Tool displacement (m) commanded by a unit action per agent step (0.18 m/s at 10 Hz)."""
    tool_speed_limit: float = bounded(0.25, 0.01, 5.0)
    """Tool speed (m/s) above which a safety event is counted (ISO 10218-1 reduced speed)."""
    suction_gain: float = 40.0
    """Adhesion force (N) of the suction cup when on."""

    def __post_init__(self) -> None:
        check_fields(self)
        lo, hi = _pair("object_half_size", self.object_half_size)
        check_range("object_half_size[0]", lo, 0.01, 0.045)
        check_range("object_half_size[1]", hi, lo, 0.045)
        check_range("physics_dt", self.physics_dt, 1e-4, 0.002)
        if 1.0 / (self.control_hz * self.physics_dt) < 1:
            raise ConfigError(f"{self.control_hz=} is faster than the physics ({self.physics_dt=})")
        check_range("suction_gain", self.suction_gain, 0.0, 500.0)

    @property
    def substeps(self) -> int:
        """Physics steps per agent step."""
        return round(1.0 / (self.control_hz * self.physics_dt))

    @property
    def max_steps(self) -> int:
        return round(self.max_episode_s * self.control_hz)


def _pair(name: str, value: object) -> tuple[float, float]:
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ConfigError(f"{name}={value!r} must be a pair (low, high)")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class _Layout:
    """Where the simulator places objects (a scenario setting, not cell geometry: the table,
    bin, workspace, arm and camera come from the cell file, ``wm_core.cell``)."""

    object_x: tuple[float, float] = (0.32, 0.62)
    object_y: tuple[float, float] = (-0.3, 0.22)


LAYOUT = _Layout()
