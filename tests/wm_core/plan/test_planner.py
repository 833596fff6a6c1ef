import numpy as np
import pytest
import torch

from wm_core.config import ConfigError
from wm_core.plan.config import PlannerConfig
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
