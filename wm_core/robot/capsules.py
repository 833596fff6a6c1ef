"""Batched, differentiable forward kinematics of the arm's collision capsules (torch).

Each URDF collision cylinder becomes a capsule: the segment between its end-cap centres,
swept by its radius (a capsule contains its cylinder). Used by the planner's guardrail costs
(thousands of candidate joint trajectories at once, differentiable for gradient planning)
and by the hard safety filter (one command at a time).
"""

from __future__ import annotations

import numpy as np
import torch

from wm_core.robot.urdf import ArmDescription, load_arm


def _rotation(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: unit axis [3], angles [B] -> rotations [B, 3, 3]."""
    x, y, z = axis
    zero = torch.zeros_like(angle)
    k = torch.stack(
        [
            torch.stack([zero, -z + zero, y + zero], -1),
            torch.stack([z + zero, zero, -x + zero], -1),
            torch.stack([-y + zero, x + zero, zero], -1),
        ],
        -2,
    )  # [B, 3, 3]
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    eye = torch.eye(3, dtype=angle.dtype).expand_as(k)
    return eye + s * k + (1 - c) * (k @ k)


class ArmCapsules(torch.nn.Module):
    """q [B, 6] -> capsule end points [B, C, 2, 3] (world, m); ``radii`` [C]; ``tool`` [B, 3]."""

    def __init__(
        self,
        arm: ArmDescription | None = None,
        skip_links: tuple[str, ...] = (),
        base_pose: np.ndarray | None = None,
    ):
        super().__init__()
        self.arm = arm or load_arm()
        base = np.eye(4) if base_pose is None else np.asarray(base_pose, float)  # [4, 4] world
        self.register_buffer("base_rot", torch.as_tensor(base[:3, :3], dtype=torch.float32))
        self.register_buffer("base_pos", torch.as_tensor(base[:3, 3], dtype=torch.float32))
        origins, axes, kinds, seg, radii, owners = [], [], [], [], [], []
        for j in self.arm.joints:
            origins.append(torch.as_tensor(j.origin, dtype=torch.float32))
            axes.append(torch.as_tensor(j.axis, dtype=torch.float32))
            kinds.append(j.type == "revolute")
        origins = torch.stack(origins)  # [J, 4, 4]
        self.register_buffer("origin_rot", origins[:, :3, :3].contiguous())  # [J, 3, 3]
        self.register_buffer("origin_pos", origins[:, :3, 3].contiguous())  # [J, 3]
        self.register_buffer("axes", torch.stack(axes))  # [J, 3]
        self.z_axis = [bool(torch.allclose(a, torch.tensor([0.0, 0.0, 1.0]))) for a in axes]
        self.revolute = kinds
        # capsules per link, in the link frame: two end points (homogeneous)
        link_order = [self.arm.base_link] + [j.child for j in self.arm.joints]
        for li, name in enumerate(link_order):
            link = self.arm.links.get(name)
            if link is None or name in skip_links:
                continue
            for cyl in link.collisions:
                half = cyl.length / 2
                ends = np.stack([cyl.origin @ [0, 0, -half, 1], cyl.origin @ [0, 0, half, 1]])
                seg.append(torch.as_tensor(ends, dtype=torch.float32))  # [2, 4]
                radii.append(cyl.radius)
                owners.append(li)
        self.register_buffer("segments", torch.stack(seg))  # [C, 2, 4]
        self.register_buffer("radii", torch.tensor(radii, dtype=torch.float32))  # [C]
        self.owners = owners  # link index of each capsule (0 = base)
        self.tool_index = link_order.index("suction_cup")

    def link_poses(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q [B, 6] -> rotations [B, L, 3, 3] and positions [B, L, 3] (world) of the base and
        of every joint's child link.

        Rotation and translation are kept apart (no 4x4 products), and a joint about its own
        z axis (every joint of this arm) turns two columns of the parent rotation by (cos,
        sin) instead of multiplying by a rotation matrix: the planner runs this for every
        step of every candidate, and it was most of a plan's time."""
        b = q.shape[0]
        rot = self.base_rot.to(q.dtype).expand(b, 3, 3)
        pos = self.base_pos.to(q.dtype).expand(b, 3)
        rots, poss, i = [rot], [pos], 0
        for k, revolute in enumerate(self.revolute):
            pos = pos + rot @ self.origin_pos[k]  # [B, 3]
            rot = rot @ self.origin_rot[k]  # [B, 3, 3]
            if revolute:
                angle = q[:, i, None]  # [B, 1]
                i += 1
                if self.z_axis[k]:
                    c, s = torch.cos(angle), torch.sin(angle)
                    x, y = rot[..., 0], rot[..., 1]  # columns [B, 3]
                    rot = torch.stack([c * x + s * y, c * y - s * x, rot[..., 2]], dim=-1)
                else:
                    rot = rot @ _rotation(self.axes[k], angle[:, 0])
            rots.append(rot)
            poss.append(pos)
        return torch.stack(rots, 1), torch.stack(poss, 1)

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rot, pos = self.link_poses(q)  # [B, L, 3, 3], [B, L, 3]
        seg = self.segments[..., :3]  # [C, 2, 3]
        ends = torch.einsum("bcij,ckj->bcki", rot[:, self.owners], seg)  # [B, C, 2, 3]
        ends = ends + pos[:, self.owners, None, :]
        return ends, pos[:, self.tool_index]  # [B, C, 2, 3], [B, 3]


def capsule_points(ends: torch.Tensor, n: int = 3) -> torch.Tensor:
    """Capsule end points [..., C, 2, 3] -> n evenly spaced axis points [..., C, n, 3]."""
    w = torch.linspace(0, 1, n, dtype=ends.dtype, device=ends.device)[:, None]  # [n, 1]
    return ends[..., 0:1, :] * (1 - w) + ends[..., 1:2, :] * w


def box_penetration(points: torch.Tensor, radii: torch.Tensor, lo, hi) -> torch.Tensor:
    """How deep (m) spheres at points [..., C, n, 3] with radii [C] reach into the box [lo, hi]:
    the smallest push-out distance, 0 when outside. -> [..., C, n]."""
    lo = torch.as_tensor(lo, dtype=points.dtype)
    hi = torch.as_tensor(hi, dtype=points.dtype)
    r = radii[:, None, None]  # [C, 1, 1]
    inside = torch.minimum(points - (lo - r), (hi + r) - points)  # [..., C, n, 3]
    return torch.relu(inside.min(dim=-1).values)
