import numpy as np
import pytest
import torch

from wm_core.config import ConfigError
from wm_core.models.objects import ObjectDynamics
from wm_core.plan.config import CostWeights, PlannerConfig
from wm_core.plan.costs import Goal
from wm_core.plan.planner import LatentMPC


@pytest.mark.parametrize("optimizer", ["cem", "mppi", "gradient"])
def test_each_optimizer_drives_the_tool_to_the_goal(kin_model, state, optimizer):
    z, p = state
    mpc = LatentMPC(kin_model, PlannerConfig(optimizer=optimizer, samples=128, iterations=4))
    goal_xyz = p[0, 6:9] + torch.tensor([0.05, -0.04, -0.03])
    goal = Goal(goal_xyz, 1.0)
    start = float((p[0, 6:9] - goal_xyz).norm())
    for _ in range(12):  # closed loop on the known dynamics
        plan = mpc.plan(z, p, goal)
        a = torch.tensor(plan.actions[:1])[None]  # [1, 1, 4]
        p = kin_model.rollout_proprio(z, p, a)[:, 0]
    end = float((p[0, 6:9] - goal_xyz).norm())
    assert end < 0.25 * start, (start, end)
    assert p[0, 9] > 0.9  # suction switched on as asked
    assert plan.actions.shape == (5, 4) and np.abs(plan.actions).max() <= 1.0
    assert plan.rollouts > 0 and plan.latency_ms > 0 and plan.tool_path.shape == (5, 3)


def test_warm_start_is_the_shifted_previous_solution(kin_model, state):
    z, p = state
    mpc = LatentMPC(kin_model, PlannerConfig(optimizer="mppi", samples=64, iterations=2))
    plan = mpc.plan(z, p, Goal(p[0, 6:9] + 0.05, 0.0))
    np.testing.assert_allclose(mpc.warm[:-1].numpy(), plan.actions[1:])
    mpc.reset()
    assert mpc.warm is None


def test_bad_inputs_are_clear_errors(kin_model, state):
    z, p = state
    mpc = LatentMPC(kin_model)
    goal = Goal(p[0, 6:9], 0.0)
    with pytest.raises(ValueError, match=r"latent must have shape \[1, 64, 32\]"):
        mpc.plan(z[:, :10], p, goal)
    with pytest.raises(ValueError, match="NaN"):
        mpc.plan(z, p * float("nan"), goal)
    with pytest.raises(ValueError, match="goal latent must have shape"):
        mpc.plan(z, p, Goal(p[0, 6:9], 0.0, latent=torch.zeros(3, 3)))
    with pytest.raises(ValueError, match="goal tool position"):
        mpc.plan(z, p, Goal(torch.tensor([0.0, float("inf"), 0.0]), 0.0))
    with pytest.raises(ConfigError, match="optimizer"):
        PlannerConfig(optimizer="annealing")
    with pytest.raises(ConfigError, match="samples"):
        PlannerConfig(samples=1)


class _PushModel(ObjectDynamics):
    """Known object dynamics: an object the tool comes within 3 cm of (in xy) is pushed to
    3 cm from it, along the line from the tool."""

    def step(self, obj, p, p_next, table_z):
        tool = p_next[:, None, 6:8]  # [B, 1, 2] the tool, in xy
        off = obj[..., :2] - tool  # [B, K, 2]
        d = off.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        pushed = tool + off / d * 0.03
        xy = torch.where(d < 0.03, pushed, obj[..., :2])
        return torch.cat([xy, obj[..., 2:]], -1)


def test_the_object_disturbance_cost_steers_around_an_object_in_the_way(kin_model, state):
    """With the object model and its cost, the tool goes around an object on its straight
    path to the goal; without them it pushes straight through."""
    z, p0 = state
    start = p0[0, 6:9]
    goal_xyz = start + torch.tensor([0.12, 0.0, 0.0])
    obj = (start + torch.tensor([0.06, 0.0, 0.0]))[None]  # [1, 3] halfway, on the line

    def closest_pass(weight: float) -> tuple[float, float]:
        w = CostWeights(object_disturbance=weight)
        cfg = PlannerConfig(samples=256, iterations=4, weights=w)
        mpc = LatentMPC(kin_model, cfg, objects=_PushModel().eval() if weight else None)
        goal = Goal(goal_xyz, 0.0, objects=obj)
        p, closest = p0, float("inf")
        for _ in range(14):
            plan = mpc.plan(z, p, goal)
            p = kin_model.rollout_proprio(z, p, torch.tensor(plan.actions[:1])[None])[:, 0]
            closest = min(closest, float((p[0, 6:8] - obj[0, :2]).norm()))
        return closest, float((p[0, 6:9] - goal_xyz).norm())

    through, _ = closest_pass(0.0)
    around, miss = closest_pass(10.0)
    assert through < 0.015, through
    assert around > 0.025, around
    assert miss < 0.03, miss  # and still gets there


def test_the_object_disturbance_cost_needs_the_object_model(kin_model, state):
    cfg = PlannerConfig(weights=CostWeights(object_disturbance=1.0))
    with pytest.raises(ValueError, match="wm train objects"):
        LatentMPC(kin_model, cfg)
    z, p = state
    mpc = LatentMPC(kin_model, cfg, objects=ObjectDynamics())
    with pytest.raises(ValueError, match=r"goal objects must be finite \[K, 3\]"):
        mpc.plan(z, p, Goal(p[0, 6:9], 0.0, objects=torch.zeros(2, 2)))


class _SuctionPullModel(ObjectDynamics):
    """Known object dynamics that depend on the suction: with it on, every object is pulled
    1 cm towards the cup per step."""

    def step(self, obj, p, p_next, table_z):
        pull = (
            (p_next[:, None, 6:9] - obj)
            * 0.01
            / (p_next[:, None, 6:9] - obj).norm(dim=-1, keepdim=True).clamp(min=1e-6)
        )
        return obj + pull * p_next[:, None, 9:10]


def test_letting_go_never_lowers_the_disturbance_cost(kin_model, state):
    """The objects are rolled out with the suction the task asks for: a candidate that drops
    the suction to spare a neighbour scores the same disturbance as one that keeps it."""
    z, p = state
    cfg = PlannerConfig(samples=8, iterations=1, weights=CostWeights(object_disturbance=10.0))
    mpc = LatentMPC(kin_model, cfg, objects=_SuctionPullModel().eval())
    goal = Goal(p[0, 6:9], 1.0, objects=p[:, 6:9] + torch.tensor([[0.05, 0.0, -0.1]]))
    keep = torch.zeros(1, 5, 4)
    keep[..., 3] = 1.0  # suction on throughout
    let_go = keep.clone()
    let_go[..., 3] = -1.0
    with torch.no_grad():
        _, parts, _ = mpc._evaluate(z, p, goal, torch.cat([keep, let_go]))
    d = parts["object_disturbance"]
    assert float(d[0]) > 0  # the suction-on rollout does move the objects
    assert float(d[0]) == pytest.approx(float(d[1]))
