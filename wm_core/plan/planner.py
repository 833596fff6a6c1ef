"""Latent MPC: optimise an action sequence through the world model, replanning every step.

One control step, top to bottom (``LatentMPC.plan``):

1. check the inputs (latent, proprioception, goal): bad input is a clear ``ValueError``;
2. start from the previous solution shifted by one step (warm start);
3. optimise with CEM, MPPI or gradient descent; each candidate batch is rolled out by the
   world model (proprioception with the scene held, the full latent when a latent goal is
   set, and the objects by the compact object model when their disturbance is costed) and
   scored by the cost stack (task + guardrails);
4. return the best sequence; its first action is executed and the rest seeds the next step.

Shapes: B candidates, H horizon, N patches, D latent channels, K objects,
P = 10 proprioception, A = 4 action dims.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from wm_core.cell import Workcell
from wm_core.models.config import ACTION_DIM, PROPRIO_DIM
from wm_core.models.objects import ObjectDynamics
from wm_core.plan.config import PlannerConfig
from wm_core.plan.costs import CostStack, Goal, Rollout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    actions: np.ndarray  # [H, 4] the optimised sequence; actions[0] is executed
    cost: float
    tool_path: np.ndarray  # [H, 3] predicted tool positions along the plan
    breakdown: dict[str, float]  # weighted cost terms of the chosen sequence
    latency_ms: float
    rollouts: int  # candidate sequences evaluated (each of horizon H)


class LatentMPC:
    def __init__(
        self,
        model,
        cfg: PlannerConfig | None = None,
        cell: Workcell | None = None,
        objects: ObjectDynamics | None = None,
    ):
        """``objects``: the compact object model, needed when the ``object_disturbance``
        cost is weighted."""
        self.model, self.cfg = model, cfg or PlannerConfig()
        if self.cfg.weights.object_disturbance > 0 and objects is None:
            raise ValueError(
                "the object_disturbance cost needs the object model (objects.pt in the model "
                "directory; make it with wm train objects), or set its weight to 0"
            )
        self.objects = objects
        if self.cfg.optimizer == "gradient" and not getattr(model, "differentiable", True):
            raise ValueError(
                f"optimizer='gradient' differentiates through the model, which backend "
                f"{getattr(model, 'name', '?')!r} cannot: use the torch backend, or cem or mppi"
            )
        torch.set_num_threads(self.cfg.threads)  # process-wide: the planner owns this process
        for prm in self.model.parameters():  # inference only; gradients flow to actions
            prm.requires_grad_(False)
        if objects is not None:
            objects.requires_grad_(False)
        self.costs = CostStack(self.cfg, cell)
        self.gen = torch.Generator().manual_seed(self.cfg.seed)
        self.reset()

    def reset(self) -> None:
        """Forget the warm start (new episode, or replanning after a surprise)."""
        self.warm: torch.Tensor | None = None  # [H, A]
        self.a_prev = torch.zeros(ACTION_DIM)

    # ------------------------------------------------------------------ the control step
    def plan(self, z: torch.Tensor, p: torch.Tensor, goal: Goal) -> Plan:
        t0 = time.perf_counter()
        self._check(z, p, goal)  # z [1, N, D], p [1, P]
        mean = self._warm_start()  # [H, A]
        if self.cfg.optimizer == "cem":
            best, n = self._cem(z, p, goal, mean)
        elif self.cfg.optimizer == "mppi":
            best, n = self._mppi(z, p, goal, mean)
        else:
            best, n = self._gradient(z, p, goal, mean)
        with torch.no_grad():  # score the chosen sequence once more, for diagnostics
            cost, parts, r = self._evaluate(z, p, goal, best[None])  # [1], {k: [1]}, Rollout
        self.warm = torch.cat([best[1:], best[-1:]])  # shift: seeds the next step
        self.a_prev = best[0].clone()
        return Plan(
            actions=best.numpy().copy(),
            cost=float(cost[0]),
            tool_path=r.p[0, :, 6:9].numpy().copy(),
            breakdown={k: float(v[0]) for k, v in parts.items()},
            latency_ms=(time.perf_counter() - t0) * 1e3,
            rollouts=n,
        )

    def _check(self, z: torch.Tensor, p: torch.Tensor, goal: Goal) -> None:
        cfg = self.model.cfg
        want = (1, cfg.grid * cfg.grid, cfg.latent_dim)
        if tuple(z.shape) != want:
            raise ValueError(f"latent must have shape {list(want)}, got {list(z.shape)}")
        if tuple(p.shape) != (1, PROPRIO_DIM):
            raise ValueError(
                f"proprioception must have shape [1, {PROPRIO_DIM}], got {list(p.shape)}"
            )
        if not (torch.isfinite(z).all() and torch.isfinite(p).all()):
            raise ValueError("latent or proprioception contains NaN/inf")
        if goal.tool.shape != (3,) or not torch.isfinite(goal.tool).all():
            raise ValueError(f"goal tool position must be 3 finite numbers, got {goal.tool}")
        if goal.latent is not None and tuple(goal.latent.shape) != want[1:]:
            raise ValueError(
                f"goal latent must have shape {list(want[1:])}, got {list(goal.latent.shape)}"
            )
        if goal.objects is not None and (
            goal.objects.ndim != 2
            or goal.objects.shape[1] != 3
            or not torch.isfinite(goal.objects).all()
        ):
            raise ValueError(f"goal objects must be finite [K, 3], got {list(goal.objects.shape)}")

    def _warm_start(self) -> torch.Tensor:
        if self.warm is None:
            return torch.zeros(self.cfg.horizon, ACTION_DIM)
        return self.warm.clone()

    def _evaluate(self, z, p, goal: Goal, actions: torch.Tensor):
        """actions [B, H, A] -> cost [B], weighted terms {k: [B]}, the rollout."""
        b = actions.shape[0]
        if self.cfg.weights.latent_goal > 0 and goal.latent is not None:
            zs, ps = self.model.rollout(z.expand(b, -1, -1), p.expand(b, -1), actions)
        else:
            zs, ps = None, self.model.rollout_proprio(z, p.expand(b, -1), actions)  # [B, H, P]
        objs = None
        if self.cfg.weights.object_disturbance > 0 and goal.objects is not None:
            # with the suction the task asks for: the cost judges where the tool goes, not
            # whether the cup holds (a plan that let go to spare a neighbour would drop what it
            # carries; seed 410015 did, before this)
            held = torch.cat([ps[..., :9], torch.full_like(ps[..., 9:], goal.suction)], -1)
            objs = self.objects.rollout(goal.objects, p, held, self.costs.table_z)  # [B,H,K,3]
        r = Rollout(p0=p, p=ps, actions=actions, a_prev=self.a_prev, z=zs, objects=objs)
        cost, parts = self.costs(r, goal)
        return cost, parts, r

    def _sample(self, mean: torch.Tensor, std: torch.Tensor, n: int) -> torch.Tensor:
        """mean, std [H, A] -> n sequences [n, H, A] in [-1, 1]; sample 0 is the mean."""
        eps = torch.randn((n, *mean.shape), generator=self.gen)
        a = (mean + std * eps).clamp(-1.0, 1.0)
        a[0] = mean.clamp(-1.0, 1.0)
        return a

    # ------------------------------------------------------------------ optimisers
    @torch.no_grad()
    def _cem(self, z, p, goal, mean):
        cfg = self.cfg
        std = torch.full_like(mean, cfg.init_std)  # [H, A]
        n_elite = max(2, int(cfg.samples * cfg.elite_frac))
        best, best_cost = mean.clamp(-1, 1), float("inf")
        for _ in range(cfg.iterations):
            a = self._sample(mean, std, cfg.samples)  # [B, H, A]
            cost, _, _ = self._evaluate(z, p, goal, a)  # [B]
            elite = a[cost.topk(n_elite, largest=False).indices]  # [E, H, A]
            mean, std = elite.mean(0), elite.std(0).clamp(min=0.02)
            i = int(cost.argmin())
            if float(cost[i]) < best_cost:
                best, best_cost = a[i].clone(), float(cost[i])
        return best, cfg.samples * cfg.iterations

    @torch.no_grad()
    def _mppi(self, z, p, goal, mean):
        cfg = self.cfg
        std = torch.full_like(mean, cfg.init_std)  # [H, A]
        best, best_cost = mean.clamp(-1, 1), float("inf")
        for _ in range(cfg.iterations):
            a = self._sample(mean, std, cfg.samples)  # [B, H, A]
            cost, _, _ = self._evaluate(z, p, goal, a)  # [B]
            w = torch.softmax(-(cost - cost.min()) / cfg.mppi_temperature, dim=0)  # [B]
            mean = (w[:, None, None] * a).sum(0)  # [H, A] importance-weighted average
            i = int(cost.argmin())
            if float(cost[i]) < best_cost:
                best, best_cost = a[i].clone(), float(cost[i])
        final, _, _ = self._evaluate(z, p, goal, mean[None])
        if float(final[0]) <= best_cost:
            best = mean
        return best, cfg.samples * cfg.iterations + 1

    def _gradient(self, z, p, goal, mean):
        """Inference by optimisation: Adam on tanh-parametrised actions through the model."""
        cfg = self.cfg
        starts = self._sample(mean, torch.full_like(mean, cfg.init_std), cfg.grad_restarts)
        u = torch.atanh(starts.clamp(-0.97, 0.97)).requires_grad_(True)  # [R, H, A]
        opt = torch.optim.Adam([u], lr=cfg.grad_lr)
        with torch.enable_grad():
            for _ in range(cfg.iterations):
                cost, _, _ = self._evaluate(z, p, goal, torch.tanh(u))  # [R]
                opt.zero_grad(set_to_none=True)
                cost.sum().backward()
                opt.step()
        with torch.no_grad():
            a = torch.tanh(u)
            cost, _, _ = self._evaluate(z, p, goal, a)
        return a[int(cost.argmin())].detach(), cfg.grad_restarts * (cfg.iterations + 1)
