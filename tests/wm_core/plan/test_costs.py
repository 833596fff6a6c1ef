"""Each guardrail term is zero on a safe rollout and grows on the violation it guards."""

import numpy as np
import torch

from wm_core.cell import sim_cell
from wm_core.plan.config import CostWeights, PlannerConfig
from wm_core.plan.costs import CostStack, Goal, Rollout
from wm_core.robot import ArmKinematics

KIN = ArmKinematics()
HOME = np.array(sim_cell().arm.home_q)


def rollout_of(qs: list[np.ndarray], suction: float = 0.0, actions=None) -> Rollout:
    """Joint trajectory [H+1] -> a one-candidate Rollout with FK tool positions."""
    p = np.stack([np.concatenate([q, KIN.tool_position(q), [suction]]) for q in qs])
    p = torch.tensor(p, dtype=torch.float32)
    h = len(qs) - 1
    a = torch.zeros(1, h, 4) if actions is None else actions
    return Rollout(p0=p[:1], p=p[None, 1:], actions=a, a_prev=torch.zeros(4))


def stack(**kw) -> CostStack:
    return CostStack(PlannerConfig(**kw), sim_cell())  # its keep-out: the table's far side


def test_safe_slow_motion_costs_nothing_but_the_goal():
    cs = stack()
    r = rollout_of([HOME + 0.01 * k for k in range(6)])
    goal = Goal(r.p[0, -1, 6:9].clone(), 0.0)
    total, parts = cs(r, goal)
    for name in ("joint_margin", "joint_velocity", "tool_speed", "collision", "keepout"):
        assert float(parts[name][0]) == 0.0, name
    assert float(parts["goal"][0]) > 0  # the earlier steps are away from the final point


def test_each_guardrail_fires_on_its_violation():
    cs = stack()
    goal = Goal(torch.zeros(3), 0.0)
    near_limit = HOME.copy()
    near_limit[0] = KIN.upper[0] - 0.01
    fast = [HOME, HOME + 1.0, HOME + 2.0]
    into_table = [HOME, HOME + np.array([0, 1.2, 0, 0, 0, 0])]
    far_side = [HOME, HOME + np.array([0, 1.5, -1.9, 0, 0, 0])]  # reach out over x = 0.9 m
    jerky = torch.tensor([[[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]])
    cases = {
        "joint_margin": rollout_of([HOME, near_limit]),
        "joint_velocity": rollout_of(fast),
        "tool_speed": rollout_of(fast),
        "joint_acceleration": rollout_of(fast),
        "collision": rollout_of(into_table),
        "keepout": rollout_of(far_side),
        "smoothness": rollout_of([HOME, HOME, HOME], actions=jerky),
    }
    for name, r in cases.items():
        assert float(cs.terms[name](r, goal)[0]) > 0, name


def test_costs_are_differentiable_and_weights_switch_terms_off():
    cs = stack(weights=CostWeights().guardrails_off())
    r = rollout_of([HOME, HOME + 0.05])
    r.p.requires_grad_(True)
    total, parts = cs(r, Goal(torch.tensor([0.4, 0.0, 0.1]), 1.0))
    assert set(parts) == {"goal", "suction"}
    total.sum().backward()
    assert torch.isfinite(r.p.grad).all() and r.p.grad.abs().sum() > 0
    full = stack()
    r2 = rollout_of([HOME, HOME + np.array([0, 1.2, 0, 0, 0, 0])])
    r2.p.requires_grad_(True)
    full(r2, Goal(torch.zeros(3), 0.0))[0].sum().backward()
    assert r2.p.grad[..., :6].abs().sum() > 0  # the collision term pushes the joints
