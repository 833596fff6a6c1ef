"""Generate the arm's MuJoCo body tree from the URDF, so the two cannot drift apart."""

from __future__ import annotations

import numpy as np
from transforms3d.euler import euler2quat
from transforms3d.quaternions import mat2quat

from wm_core.robot.urdf import ArmDescription, Link

# Position-servo gains per joint (N m / rad) and damping (N m s / rad): stiff shoulder, soft wrist.
KP = (3000.0, 3000.0, 2000.0, 400.0, 400.0, 200.0)
KV = (150.0, 150.0, 100.0, 20.0, 20.0, 10.0)
ARMATURE = 0.1


def _fmt(v) -> str:
    return " ".join(f"{float(x):.9g}" for x in np.ravel(v))


def _geoms(link: Link, cls: str) -> str:
    out = []
    for i, c in enumerate(link.collisions):
        pos = c.origin[:3, 3]
        quat = mat2quat(c.origin[:3, :3])
        out.append(
            f'<geom name="{link.name}_col{i}" class="{cls}" type="cylinder" '
            f'size="{c.radius:.6g} {c.length / 2:.6g}" pos="{_fmt(pos)}" quat="{_fmt(quat)}"/>'
        )
    return "".join(out)


def _inertial(link: Link) -> str:
    if link.inertial is None:
        return ""
    i = link.inertial
    return (
        f'<inertial pos="{_fmt(i.origin_xyz)}" mass="{i.mass:.6g}" '
        f'diaginertia="{_fmt(i.diag_inertia)}"/>'
    )


def arm_body_xml(
    arm: ArmDescription,
    base_pos=(0.0, 0.0, 0.0),
    extra: dict | None = None,
    base_rpy=(0.0, 0.0, 0.0),
) -> str:
    """MJCF ``<body>`` tree for the arm, its base at ``base_pos`` turned by ``base_rpy``
    (fixed-axis x-y-z). ``extra`` maps link name -> XML appended in its body."""
    extra = extra or {}
    base = arm.links[arm.base_link]
    base_quat = euler2quat(*base_rpy, axes="sxyz")
    xml = [
        f'<body name="{base.name}" pos="{_fmt(base_pos)}" quat="{_fmt(base_quat)}">',
        _inertial(base),
        _geoms(base, "arm_base"),
        extra.get(base.name, ""),
    ]
    closers = ["</body>"]
    for j in arm.joints:
        child = arm.links[j.child]
        quat = euler2quat(j.rpy[0], j.rpy[1], j.rpy[2], axes="sxyz")
        xml.append(
            f'<body name="{child.name}" pos="{_fmt(j.xyz)}" quat="{_fmt(quat)}" gravcomp="1">'
        )
        if j.type == "revolute":
            xml.append(
                f'<joint name="{j.name}" type="hinge" axis="{_fmt(j.axis)}" '
                f'range="{j.lower:.7g} {j.upper:.7g}" armature="{ARMATURE}" damping="1"/>'
            )
        xml.append(_inertial(child))
        xml.append(_geoms(child, "arm"))
        xml.append(extra.get(child.name, ""))
        closers.append("</body>")
    xml.extend(closers)
    return "\n".join(x for x in xml if x)


def arm_actuators_xml(arm: ArmDescription) -> str:
    """Position servos (joint position control), ctrlrange = URDF position limits."""
    out = []
    for i, j in enumerate(arm.actuated):
        out.append(
            f'<position name="{j.name}_pos" joint="{j.name}" kp="{KP[i]}" kv="{KV[i]}" '
            f'ctrlrange="{j.lower:.7g} {j.upper:.7g}" forcerange="{-j.effort * 2} {j.effort * 2}"/>'
        )
    return "\n".join(out)
