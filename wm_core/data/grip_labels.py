"""The robot's own object labels, from where its suction cup gripped.

A user with a real robot has no object poses. What the robot can tell by itself is when its cup
holds something (the gripper's vacuum switch, ``/suction/holding``) and where the cup was then
(forward kinematics of the measured joints). Objects on a table stay where they are until the
robot picks them up, so a grip at time ``t`` says where that object was at every earlier frame
of the same scene, and the cup's path says where it was while held and where it was let go.

So, for one *scene* (a table set up once, then worked on; the recording of one bag, or the part
of one between two annotated resets), with the number of objects the user put on the table (one
counted human annotation per scene):

- each rising edge of the vacuum switch is a grip at the cup's position. The gripped object's
  top was at the cup, its bottom on the table top: its centre is half way;
- before its first grip, an object was where it was gripped; while held, it moves with the cup
  (a rigid offset); when let go above the bin, it lies in the bin under that point; let go
  elsewhere, it lies on the table under that point, and a later grip within ``match_radius_m``
  of it is the same object again;
- the scene is *explained* when the grips found exactly the annotated number of objects. Then
  every object's position is known at every frame, and the scene's frames are labelled with
  ``object_pos`` [T, K, 3], the same layout as the simulator's privileged label (objects in the
  bin included). Otherwise it gets no labels (its frames still train the encoder and predictor,
  which need none), and the reason is returned.

What this cannot see: an object pushed before it was gripped (labelled where it was gripped),
one that slid off the cup while the switch still read "held", or two objects gripped at once.
Those give wrong labels; a scene where they change the object count is refused as unexplained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wm_core.cell import Workcell
from wm_core.config import check_range


@dataclass(frozen=True)
class GripLabelConfig:
    match_radius_m: float = 0.05
    """A grip this close (xy, m) to where an object was let go on the table is that object."""
    min_hold_steps: int = 2
    """A "held" reading shorter than this many frames is switch chatter, not a grip."""

    def __post_init__(self) -> None:
        check_range("match_radius_m", self.match_radius_m, 0.001, 0.5)
        check_range("min_hold_steps", self.min_hold_steps, 1, 100, integer=True)


@dataclass(frozen=True)
class SceneLabels:
    """What the grips of one scene said: labels when it is explained, else why not."""

    object_pos: np.ndarray | None  # [T, K, 3] when explained
    grips: int
    objects_found: int
    objects_annotated: int
    in_bin: int
    """Objects let go above the bin (cleared)."""
    reason: str = ""
    """Why the scene is not explained ('' when it is)."""

    @property
    def explained(self) -> bool:
        return self.object_pos is not None


def holds(held: np.ndarray, min_steps: int) -> list[tuple[int, int]]:
    """Vacuum switch readings [T] -> (first, last + 1) frame of each hold of at least
    ``min_steps`` frames; a hold still on at the end ends at T."""
    h = np.asarray(held, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], h, [False]]).astype(int)))
    spans = list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
    return [(a, b) for a, b in spans if b - a >= min_steps]


def scene_labels(
    tool: np.ndarray,
    held: np.ndarray,
    cell: Workcell,
    n_objects: int,
    cfg: GripLabelConfig = GripLabelConfig(),
) -> SceneLabels:
    """Cup positions [T, 3] (world, from FK) and the vacuum switch [T] of one scene with
    ``n_objects`` objects set on its table -> the scene's object labels."""
    tool = np.asarray(tool, np.float64)
    if tool.ndim != 2 or tool.shape[1] != 3 or len(held) != len(tool):
        raise ValueError(f"tool {tool.shape} and held {np.shape(held)} must be [T, 3] and [T]")
    check_range("n_objects", n_objects, 1, 64, integer=True)
    n, z0 = len(tool), cell.table.top_z
    (bx, by), bh = cell.bin.center, cell.bin.inner_half
    tracks: list[np.ndarray] = []  # per object: positions [T, 3], filled in as grips come
    resting: list[tuple[int, np.ndarray]] = []  # (object, where let go on the table)
    spans = holds(held, cfg.min_hold_steps)
    in_bin = 0
    for a, b in spans:
        cup = tool[a]
        centre = np.array([cup[0], cup[1], (z0 + cup[2]) / 2.0])  # top at the cup, bottom on z0
        offset = cup - centre
        match = [
            (np.linalg.norm(p[:2] - cup[:2]), k, i)
            for i, (k, p) in enumerate(resting)
            if np.linalg.norm(p[:2] - cup[:2]) <= cfg.match_radius_m
        ]
        if match:
            _, k, i = min(match)
            resting.pop(i)
            track = tracks[k]  # lying where it was let go until this grip
        else:
            track = np.empty((n, 3))
            track[:a] = centre  # where it stood since the scene began
            tracks.append(track)
            k = len(tracks) - 1
        track[a:b] = tool[a:b] - offset  # held: moves with the cup
        if b < n:  # let go: it falls under the cup
            let_go = tool[b - 1] - offset
            if abs(let_go[0] - bx) <= bh and abs(let_go[1] - by) <= bh:
                track[b:] = [let_go[0], let_go[1], z0 + offset[2]]  # on the bin's floor
                in_bin += 1
            else:
                track[b:] = [let_go[0], let_go[1], centre[2]]
                resting.append((k, track[b].copy()))
    found = len(tracks)
    common = {"grips": len(spans), "objects_found": found, "objects_annotated": n_objects}
    if found != n_objects:
        why = f"the grips found {found} object(s), the annotation says {n_objects}: " + (
            "some were never gripped" if found < n_objects else "a grip matched no object"
        )
        return SceneLabels(None, **common, in_bin=in_bin, reason=why)
    pos = np.stack(tracks, axis=1).astype(np.float32)  # [T, K, 3]
    return SceneLabels(pos, **common, in_bin=in_bin)
