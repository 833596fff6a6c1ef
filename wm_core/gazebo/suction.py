"""The suction relay's decisions, without ROS (``wm_bringup.gz_suction`` publishes them).

Gazebo's suction is one ``DetachableJoint`` per object (:mod:`wm_core.gazebo.robot`). The relay
turns the stack's suction command (a bool, as a real valve gets it) into attach and detach
requests: on a rising edge it attaches the object nearest the cup tip within
:data:`~wm_core.gazebo.robot.SUCTION_RADIUS`; on a falling edge it detaches the held one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from wm_core.gazebo.robot import SUCTION_RADIUS, pick_object
from wm_core.robot.kinematics import TOOL_LINK, ArmKinematics

log = logging.getLogger(__name__)

Request = tuple[str, str]
"""("attach" or "detach", object name)."""


class SuctionRelay:
    """State: the last command, the held object, the joints and the object positions."""

    def __init__(
        self,
        objects: Sequence[str],
        kinematics: ArmKinematics,
        joint_names: Sequence[str],
        radius: float = SUCTION_RADIUS,
    ):
        self.objects = tuple(objects)
        self.kin = kinematics
        self.joint_names = tuple(joint_names)
        self.radius = radius
        self.on = False
        self.held: str | None = None
        self.q: np.ndarray | None = None  # [6] in joint_names order
        self.positions: dict[str, np.ndarray] = {}

    def joints(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """A joint state (any order, extra joints ignored; one lacking an arm joint is ignored)."""
        index = {n: i for i, n in enumerate(names)}
        if all(n in index for n in self.joint_names):
            self.q = np.array([float(positions[index[n]]) for n in self.joint_names])

    def object_positions(self, positions: Mapping[str, Sequence[float]]) -> None:
        """World positions (m) of (some of) the objects; other names are ignored."""
        for name, xyz in positions.items():
            if name in self.objects:
                self.positions[name] = np.asarray(xyz, float)

    def cup_position(self) -> np.ndarray | None:
        if self.q is None:
            return None
        return self.kin.link_frames(self.q)[TOOL_LINK][:3, 3]

    def release_all(self) -> list[Request]:
        """Detach every object (Harmonic's DetachableJoint welds its child on load); nothing
        while an object is held."""
        return [] if self.held is not None else [("detach", o) for o in self.objects]

    def command(self, on: bool) -> list[Request]:
        """The requests for a suction command (only edges act)."""
        on = bool(on)
        if on == self.on:
            return []
        self.on = on
        if not on:
            held, self.held = self.held, None
            return [] if held is None else [("detach", held)]
        cup = self.cup_position()
        if cup is None:
            log.warning("suction on before any joint state: nothing picked")
            return []
        self.held = pick_object(cup, self.positions, self.radius)
        return [] if self.held is None else [("attach", self.held)]
