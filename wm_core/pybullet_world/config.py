"""Configuration of the PyBullet world: what is not cell geometry (the table, bin, arm base
and camera come from the cell file): objects, colours, textures, the light, and timing."""

from __future__ import annotations

from dataclasses import dataclass

from wm_core.config import ConfigError, bounded, check_fields, check_range
from wm_core.robot.limits import CONTROL_HZ

SHAPES = ("box", "cylinder", "bar")
"""Object shapes: a cube-ish box, an upright cylinder, a long flat bar (a box of aspect 2-3)."""


def _vector(name: str, value: object, n: int, lo: float, hi: float) -> None:
    if not (isinstance(value, tuple) and len(value) == n):
        raise ConfigError(f"{name}={value!r} must be {n} numbers")
    for i, v in enumerate(value):
        check_range(f"{name}[{i}]", v, lo, hi)


@dataclass(frozen=True)
class PyBulletWorldConfig:
    """One family of table-clearing episodes in the PyBullet world. All randomisation is drawn
    from the episode seed given to ``reset``."""

    n_objects: int = bounded(3, 1, 6, integer=True)
    """Objects on the table per episode, 1-6."""
    object_x: tuple[float, float] = (0.30, 0.60)
    """Range (m, world x) of object centres: a scenario setting, kept inside the table."""
    object_y: tuple[float, float] = (-0.18, 0.28)
    """Range (m, world y) of object centres."""
    object_half_size: tuple[float, float] = (0.018, 0.038)
    """Range (m) of object half-extents (a bar's long side is 2-3 times its short one)."""
    textured_fraction: float = bounded(0.5, 0.0, 1.0)
    """Fraction of objects that wear a striped texture instead of a plain colour."""
    object_mass: float = bounded(0.08, 0.005, 2.0)
    """Mass (kg) of each object."""
    table_rgba: tuple[float, float, float, float] = (0.78, 0.64, 0.45, 1.0)
    """Table colour (light wood; the MuJoCo table is grey)."""
    bin_rgba: tuple[float, float, float, float] = (0.15, 0.35, 0.7, 1.0)
    """Bin colour."""
    floor_rgba: tuple[float, float, float, float] = (0.35, 0.38, 0.35, 1.0)
    """Floor colour (the background the camera sees beyond the table)."""
    light_direction: tuple[float, float, float] = (-0.4, 0.6, 1.0)
    """Direction towards the single directional light (world frame)."""
    light_color: tuple[float, float, float] = (1.0, 0.93, 0.82)
    """Light colour (warm; MuJoCo's two lights are white)."""
    light_ambient: float = bounded(0.45, 0.0, 1.0)
    """Ambient coefficient of TinyRenderer's lighting."""
    light_diffuse: float = bounded(0.55, 0.0, 1.0)
    """Diffuse coefficient."""
    light_specular: float = bounded(0.1, 0.0, 1.0)
    """Specular coefficient."""
    shadows: bool = True
    """Cast shadows from the light."""
    image_width: int = bounded(160, 16, 1280, integer=True)
    """Width (px) of the rendered camera image; the height keeps the cell camera's aspect."""
    control_hz: float = bounded(10.0, *CONTROL_HZ)
    """Agent (command and camera) rate, Hz."""
    physics_hz: float = bounded(240.0, 100.0, 2000.0)
    """Physics rate (Hz): an integer multiple of ``control_hz``."""
    max_episode_s: float = bounded(90.0, 1.0, 3600.0)
    """Episode time limit, simulated s."""
    tool_speed_limit: float = bounded(0.25, 0.01, 5.0)
    """Tool speed (m/s) above which a safety event is scored (ISO 10218-1 reduced speed)."""
    suction_force: float = bounded(30.0, 1.0, 500.0)
    """Largest force (N) the suction constraint holds with (about 30 times a 0.1 kg object's
    weight)."""
    suction_contact_m: float = bounded(0.004, 0.0, 0.02)
    """The cup touches an object when their contact distance is below this (m)."""
    calibration_board: bool = False
    """Fix a ChArUco board plate beside the cup (visual only; ``wm calibrate collect``): the
    MuJoCo world's board (``wm_core.sim.calibration.BOARD``) at the same place on the tool."""

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("object_x", "object_y", "object_half_size"):
            _vector(name, getattr(self, name), 2, -5.0, 5.0)
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ConfigError(f"{name}={[lo, hi]} must be [low, high] with low < high")
        check_range("object_half_size[0]", self.object_half_size[0], 0.013, 0.05)
        check_range("object_half_size[1]", self.object_half_size[1], 0.013, 0.05)
        for name in ("table_rgba", "bin_rgba", "floor_rgba"):
            _vector(name, getattr(self, name), 4, 0.0, 1.0)
        _vector("light_direction", self.light_direction, 3, -10.0, 10.0)
        _vector("light_color", self.light_color, 3, 0.0, 1.0)
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(
                f"physics_hz={self.physics_hz} must be an integer multiple of "
                f"control_hz={self.control_hz}"
            )

    @property
    def substeps(self) -> int:
        """Physics steps per agent step."""
        return round(self.physics_hz / self.control_hz)

    @property
    def max_steps(self) -> int:
        return round(self.max_episode_s * self.control_hz)
