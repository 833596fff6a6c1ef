"""Parse the project's URDF into a serial-chain description.

Only what the stack needs is read: joint origins, axes and limits, link inertials and
cylinder collision shapes. Anything else in the file is ignored; anything malformed raises
``ValueError`` naming the element.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from transforms3d.euler import euler2mat

DEFAULT_URDF = Path(__file__).with_name("ur5e_like.urdf")


def origin_to_matrix(xyz: np.ndarray, rpy: np.ndarray) -> np.ndarray:
    """URDF origin (fixed-axis roll, pitch, yaw) to a 4x4 homogeneous transform."""
    t = np.eye(4)
    t[:3, :3] = euler2mat(rpy[0], rpy[1], rpy[2], axes="sxyz")
    t[:3, 3] = xyz
    return t


@dataclass(frozen=True)
class Cylinder:
    """A cylinder collision shape in its link frame (axis along the origin's local z)."""

    origin: np.ndarray  # [4, 4] link -> shape
    radius: float
    length: float


@dataclass(frozen=True)
class Inertial:
    origin_xyz: np.ndarray  # [3]
    mass: float
    diag_inertia: np.ndarray  # [3]


@dataclass(frozen=True)
class Link:
    name: str
    inertial: Inertial | None
    collisions: tuple[Cylinder, ...]


@dataclass(frozen=True)
class Joint:
    name: str
    type: str  # "revolute" or "fixed"
    parent: str
    child: str
    origin: np.ndarray  # [4, 4] parent -> joint frame at q = 0
    xyz: np.ndarray  # [3]
    rpy: np.ndarray  # [3]
    axis: np.ndarray  # [3]
    lower: float
    upper: float
    velocity: float
    effort: float


@dataclass(frozen=True)
class ArmDescription:
    """A serial chain: joints in order from the base, links keyed by name."""

    name: str
    base_link: str
    joints: tuple[Joint, ...]
    links: dict[str, Link]

    @property
    def actuated(self) -> tuple[Joint, ...]:
        return tuple(j for j in self.joints if j.type == "revolute")

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.actuated)

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.actuated])

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.actuated])

    @property
    def velocity_limit(self) -> np.ndarray:
        return np.array([j.velocity for j in self.actuated])


def _floats(text: str | None, n: int, where: str) -> np.ndarray:
    if text is None:
        return np.zeros(n)
    try:
        vals = np.array([float(v) for v in text.split()])
    except ValueError as exc:
        raise ValueError(f"URDF {where}: cannot parse {text!r} as {n} numbers") from exc
    if vals.shape != (n,):
        raise ValueError(f"URDF {where}: expected {n} numbers, got {text!r}")
    return vals


def _origin(el: ET.Element | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    if el is None:
        return np.zeros(3), np.zeros(3)
    return _floats(el.get("xyz"), 3, where + "/origin@xyz"), _floats(
        el.get("rpy"), 3, where + "/origin@rpy"
    )


def parse_urdf(text: str) -> ArmDescription:
    """Parse URDF text into an :class:`ArmDescription` (serial chains only)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"URDF is not well-formed XML: {exc}") from exc
    links: dict[str, Link] = {}
    for el in root.findall("link"):
        name = el.get("name")
        if not name:
            raise ValueError("URDF <link> without a name")
        inertial = None
        if (ie := el.find("inertial")) is not None:
            xyz, _ = _origin(ie.find("origin"), f"link {name} inertial")
            mass_el = ie.find("mass")
            inertia_el = ie.find("inertia")
            if mass_el is None or inertia_el is None:
                raise ValueError(f"URDF link {name}: inertial needs <mass> and <inertia>")
            diag = np.array([float(inertia_el.get(k, "0")) for k in ("ixx", "iyy", "izz")])
            inertial = Inertial(xyz, float(mass_el.get("value", "nan")), diag)
        cols = []
        for ce in el.findall("collision"):
            xyz, rpy = _origin(ce.find("origin"), f"link {name} collision")
            cyl = ce.find("geometry/cylinder")
            if cyl is None:
                raise ValueError(f"URDF link {name}: only cylinder collisions are supported")
            cols.append(
                Cylinder(
                    origin_to_matrix(xyz, rpy), float(cyl.get("radius")), float(cyl.get("length"))
                )
            )
        links[name] = Link(name, inertial, tuple(cols))

    joints_by_parent: dict[str, Joint] = {}
    children = set()
    for el in root.findall("joint"):
        name, jtype = el.get("name", "?"), el.get("type", "?")
        if jtype not in ("revolute", "fixed"):
            raise ValueError(f"URDF joint {name}: type {jtype!r} not in ('revolute', 'fixed')")
        parent = el.find("parent")
        child = el.find("child")
        if parent is None or child is None:
            raise ValueError(f"URDF joint {name}: needs <parent> and <child>")
        xyz, rpy = _origin(el.find("origin"), f"joint {name}")
        axis = _floats(
            el.find("axis").get("xyz") if el.find("axis") is not None else "0 0 1",
            3,
            f"joint {name} axis",
        )
        lim = el.find("limit")
        if jtype == "revolute" and lim is None:
            raise ValueError(f"URDF joint {name}: revolute joint needs <limit>")
        lo, hi, vel, eff = (
            (
                float(lim.get("lower")),
                float(lim.get("upper")),
                float(lim.get("velocity")),
                float(lim.get("effort", "0")),
            )
            if lim is not None
            else (0.0, 0.0, 0.0, 0.0)
        )
        if jtype == "revolute" and not (lo < hi and vel > 0):
            raise ValueError(f"URDF joint {name}: need lower < upper and velocity > 0")
        pname, cname = parent.get("link"), child.get("link")
        if pname in joints_by_parent:
            raise ValueError(f"URDF link {pname} has two child joints; only serial chains")
        joints_by_parent[pname] = Joint(
            name,
            jtype,
            pname,
            cname,
            origin_to_matrix(xyz, rpy),
            xyz,
            rpy,
            axis / np.linalg.norm(axis),
            lo,
            hi,
            vel,
            eff,
        )
        children.add(cname)
    roots = [n for n in links if n not in children]
    if len(roots) != 1:
        raise ValueError(f"URDF must have exactly one root link, found {roots}")
    chain, link = [], roots[0]
    while link in joints_by_parent:
        chain.append(joints_by_parent[link])
        link = chain[-1].child
    return ArmDescription(root.get("name", "arm"), roots[0], tuple(chain), links)


@lru_cache(maxsize=4)
def load_arm(path: str | Path = DEFAULT_URDF) -> ArmDescription:
    """Load and parse a URDF file (cached per path)."""
    return parse_urdf(Path(path).read_text())
