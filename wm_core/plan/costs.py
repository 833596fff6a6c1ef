"""Composable planner costs over batched rollouts of the world model.

Every term is a small callable ``term(rollout, goal) -> [B]`` (B candidate action sequences);
:class:`CostStack` weights them from :class:`~wm_core.plan.config.CostWeights`. All terms are
differentiable, so the gradient optimiser can descend through them and the world model.

State layout (``wm_core.models.config``): proprioception p = [joints 0:6, tool xyz 6:9,
suction 9]. The guardrails read the *predicted* joints, so they judge the plan the model
expects to happen; the hard safety filter later judges the command itself, independently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from wm_core.cell import Workcell, sim_cell
from wm_core.plan.config import PlannerConfig
from wm_core.robot import ArmKinematics
from wm_core.robot.capsules import ArmCapsules, box_penetration, capsule_points

CM2 = 1e-4  # m^2 per cm^2


@dataclass
class Rollout:
    p0: torch.Tensor  # [1, 10] current proprioception
    p: torch.Tensor  # [B, H, 10] predicted proprioception
    actions: torch.Tensor  # [B, H, 4]
    a_prev: torch.Tensor  # [4] the action executed last step
    z: torch.Tensor | None = None  # [B, H, N, D] predicted latents (full rollout only)
    objects: torch.Tensor | None = None  # [B, H, K, 3] predicted objects (object model only)
    capsule_points: torch.Tensor | None = None  # [B, H, C, 3, 3] filled on first use

    @property
    def q(self) -> torch.Tensor:
        """Joint trajectory including the start: [B, H+1, 6]."""
        q0 = self.p0[:, None, :6].expand(self.p.shape[0], 1, 6)
        return torch.cat([q0, self.p[..., :6]], dim=1)


@dataclass
class Goal:
    tool: torch.Tensor  # [3] tool position subgoal (m)
    suction: float  # desired suction state, 0 or 1
    latent: torch.Tensor | None = None  # [N, D] goal latent (latent_goal term)
    objects: torch.Tensor | None = None  # [K, 3] objects to leave where they are (disturbance)


class CostStack:
    """The weighted sum of the cost terms; ``breakdown`` keeps each term for diagnostics."""

    def __init__(
        self, cfg: PlannerConfig, cell: Workcell | None = None, kin: ArmKinematics | None = None
    ):
        """Guardrail geometry (table top, obstacles, keep-out boxes, the arm's base) is the
        cell's: the same file the safety filter reads."""
        self.cfg, self.w = cfg, cfg.weights
        cell = cell or sim_cell()
        kin = kin or ArmKinematics(base_pose=cell.arm.T_world_base)
        self.capsules = ArmCapsules(kin.arm, base_pose=kin.base_pose)
        self.table_z = cell.table.top_z
        self.lower = torch.tensor(kin.lower, dtype=torch.float32)
        self.upper = torch.tensor(kin.upper, dtype=torch.float32)
        self.vmax = torch.tensor(kin.velocity_limit, dtype=torch.float32) * cfg.velocity_fraction
        self.checked = torch.tensor([i for i, o in enumerate(self.capsules.owners) if o >= 2])
        self.obstacles = [(np.asarray(lo), np.asarray(hi)) for lo, hi in cell.obstacles]
        self.keepout = [(np.asarray(lo), np.asarray(hi)) for lo, hi in cell.keepout_boxes]
        self.terms: dict[str, Callable[[Rollout, Goal], torch.Tensor]] = {
            "goal": self.goal,
            "suction": self.suction,
            "latent_goal": self.latent_goal,
            "object_disturbance": self.object_disturbance,
            "joint_margin": self.joint_margin,
            "joint_velocity": self.joint_velocity,
            "joint_acceleration": self.joint_acceleration,
            "tool_speed": self.tool_speed,
            "collision": self.collision,
            "keepout": self.keepout_cost,
            "smoothness": self.smoothness,
        }

    def __call__(self, r: Rollout, goal: Goal) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-> total cost [B] and the weighted terms {name: [B]}."""
        parts = {
            name: getattr(self.w, name) * term(r, goal)
            for name, term in self.terms.items()
            if getattr(self.w, name) > 0
        }
        return torch.stack(list(parts.values())).sum(0), parts

    # ------------------------------------------------------------------ task
    def goal(self, r: Rollout, g: Goal) -> torch.Tensor:
        d2 = ((r.p[..., 6:9] - g.tool) ** 2).sum(-1) / CM2  # [B, H]
        return d2.sum(-1)

    def suction(self, r: Rollout, g: Goal) -> torch.Tensor:
        return ((r.p[..., 9] - g.suction) ** 2).sum(-1)

    def latent_goal(self, r: Rollout, g: Goal) -> torch.Tensor:
        if g.latent is None:
            return torch.zeros(r.p.shape[0])
        if r.z is None:
            raise ValueError("the latent_goal cost needs the full latent rollout")
        if g.latent.shape != r.z.shape[-2:]:
            raise ValueError(
                f"goal latent has shape {list(g.latent.shape)}, the model's latent is "
                f"{list(r.z.shape[-2:])}"
            )
        return ((r.z[:, -1] - g.latent) ** 2).mean(dim=(-2, -1))

    def object_disturbance(self, r: Rollout, g: Goal) -> torch.Tensor:
        """Predicted displacement (cm^2, summed over the horizon) of the objects the task is
        not picking: the plan should not push them (``wm_core.models.objects``)."""
        if r.objects is None or g.objects is None:
            return torch.zeros(r.p.shape[0])
        return (((r.objects - g.objects) ** 2).sum(-1) / CM2).sum(dim=(-2, -1))

    # ------------------------------------------------------------------ guardrails
    def joint_margin(self, r: Rollout, g: Goal) -> torch.Tensor:
        q, m = r.p[..., :6], self.cfg.joint_margin
        low = torch.relu(self.lower + m - q)
        high = torch.relu(q - (self.upper - m))
        return ((low + high) ** 2).sum(dim=(-2, -1))

    def joint_velocity(self, r: Rollout, g: Goal) -> torch.Tensor:
        qd = r.q.diff(dim=1) / self.cfg.control_dt  # [B, H, 6]
        return (torch.relu(qd.abs() - self.vmax) ** 2).sum(dim=(-2, -1))

    def joint_acceleration(self, r: Rollout, g: Goal) -> torch.Tensor:
        if r.p.shape[1] < 2:
            return torch.zeros(r.p.shape[0])
        qdd = r.q.diff(n=2, dim=1) / self.cfg.control_dt**2  # [B, H-1, 6]
        return (qdd**2).sum(dim=(-2, -1))

    def tool_speed(self, r: Rollout, g: Goal) -> torch.Tensor:
        tool = torch.cat([r.p0[:, None, 6:9].expand(r.p.shape[0], 1, 3), r.p[..., 6:9]], 1)
        v = tool.diff(dim=1).norm(dim=-1) / self.cfg.control_dt  # [B, H]
        return (torch.relu(v - self.cfg.tool_speed_limit) ** 2).sum(-1)

    def _points(self, r: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """Capsule axis points of the predicted arm [B, H, C, 3, 3] (cached on the rollout)."""
        if r.capsule_points is None:
            b, h = r.p.shape[:2]
            ends, _ = self.capsules(r.p[..., :6].reshape(b * h, 6))  # [B*H, C, 2, 3]
            r.capsule_points = capsule_points(ends, 3).reshape(b, h, ends.shape[1], 3, 3)
        return r.capsule_points, self.capsules.radii

    def collision(self, r: Rollout, g: Goal) -> torch.Tensor:
        pts, radii = self._points(r)  # [B, H, C, 3, 3], [C]
        sel, rs = pts[:, :, self.checked], radii[self.checked]
        table = torch.relu(rs[:, None] - (sel[..., 2] - self.table_z))  # [B, H, Cc, 3]
        cost = (table**2).sum(dim=(-3, -2, -1))
        for lo, hi in self.obstacles:
            cost = cost + (box_penetration(sel, rs, lo, hi) ** 2).sum(dim=(-3, -2, -1))
        return cost

    def keepout_cost(self, r: Rollout, g: Goal) -> torch.Tensor:
        if not self.keepout:
            return torch.zeros(r.p.shape[0])
        pts, radii = self._points(r)
        cost = torch.zeros(r.p.shape[0])
        for lo, hi in self.keepout:
            cost = cost + (box_penetration(pts, radii, lo, hi) ** 2).sum(dim=(-3, -2, -1))
        return cost

    def smoothness(self, r: Rollout, g: Goal) -> torch.Tensor:
        a = torch.cat([r.a_prev.expand(r.actions.shape[0], 1, 4), r.actions], dim=1)
        return (a.diff(dim=1)[..., :3] ** 2).sum(dim=(-2, -1))
