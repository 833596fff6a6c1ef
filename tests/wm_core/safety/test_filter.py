"""The hard safety filter: limits, holds, e-stop, geometry, and zero violations in the sim."""

import dataclasses

import numpy as np
import pytest

from wm_core.cell import sim_cell
from wm_core.config import ConfigError
from wm_core.eval.runner import make_filter, safe_step
from wm_core.safety import FilterConfig, SafetyFilter
from wm_core.sim import SceneConfig, TableClearingEnv

HOME = np.array(sim_cell().arm.home_q)


@pytest.fixture
def flt():
    f = SafetyFilter()
    f.reset(HOME)
    return f


def test_clamps_position_and_velocity(flt):
    res = flt.filter(HOME + 10.0, True, HOME)
    assert res.status == "clamped" and res.suction
    assert {"joint position limit", "joint velocity limit", "tool speed limit"} <= set(res.reasons)
    assert np.all(np.abs(res.q - HOME) <= flt.max_step + 1e-9)
    assert np.all(res.q <= flt.upper) and np.all(res.q >= flt.lower)


def test_nan_and_stale_inputs_hold_the_last_command(flt):
    ok = flt.filter(HOME + 0.003, False, HOME)
    assert ok.status == "ok"
    for res in (
        flt.filter(np.full(6, np.nan), True, HOME),
        flt.filter(HOME, True, np.array([np.nan, 0, 0, 0, 0, 0])),
        flt.filter(HOME, True, HOME[:5]),
    ):
        assert res.status == "hold_nan"
        np.testing.assert_array_equal(res.q, ok.q)
        assert res.suction is False  # suction state is held too
    stale = flt.filter(HOME, True, HOME, command_age_s=0.8)
    assert stale.status == "hold_stale" and "command is 0.800 s old" in stale.reasons[0]
    assert flt.filter(HOME, True, HOME, state_age_s=float("nan")).status == "hold_stale"


def test_estop_latches_until_released(flt):
    flt.estop("operator")
    for _ in range(3):
        res = flt.filter(HOME + 0.05, True, HOME)
        assert res.status == "estop" and res.reasons == ("operator",)
    flt.release()
    assert flt.filter(HOME + 0.05, True, HOME).passed


def test_rejects_commands_into_the_table_and_keepout(flt):
    # shoulder lift down: the upper arm swings into the table
    q = HOME.copy()
    steps = []
    for _ in range(40):
        q[1] += 0.1
        steps.append(flt.filter(q, False, flt.last_q))
    assert any(r.status == "rejected" for r in steps)
    assert flt.violation(flt.last_q) == 0.0
    # a keep-out box around the current tool blocks any move that enters it
    cell = dataclasses.replace(sim_cell(), keepout_boxes=(((0.3, -0.2, 0.0), (0.5, 0.2, 0.3)),))
    f = SafetyFilter(FilterConfig(), cell)
    f.reset(HOME)
    assert f.violation(HOME) == 0.0


def test_bad_config_is_rejected():
    with pytest.raises(ConfigError, match="velocity_scale"):
        FilterConfig(velocity_scale=2.0)
    with pytest.raises(ConfigError, match="keepout_boxes"):
        dataclasses.replace(sim_cell(), keepout_boxes=(((1, 1, 1), (0, 0, 0)),))


def test_random_and_adversarial_commands_cause_no_violations():
    """Drive the sim arm only through the filter with random Cartesian actions, random joint
    targets and adversarial ones (far outside the limits, into the table, into the keep-out
    box, NaN); the simulator's safety monitor must count zero events."""
    cfg = SceneConfig(render_images=False)
    env = TableClearingEnv(cfg)
    obs, _ = env.reset(7)
    flt = make_filter(cfg, env.cell)
    flt.reset(obs["joint_pos"])
    rng = np.random.default_rng(0)
    kinds = []
    for t in range(300):
        mode = t % 5
        if mode == 0:  # random Cartesian action through the runner's path
            *_, res = safe_step(env, flt, rng.uniform(-1, 1, 4))
        else:
            if mode == 1:
                q = rng.uniform(-7, 7, 6)  # wildly out of range
            elif mode == 2:
                q = env.q_cmd + np.array([0, 0.5, 0.5, 0, 0, 0])  # push down into the table
            elif mode == 3:
                q = env.q_cmd + np.array([np.pi / 2, 0, 0, 0, 0, 0])  # swing to the far side
            else:
                q = np.array([np.nan] * 6)
            res = flt.filter(q, bool(rng.random() < 0.5), env.joint_positions())
            env.step_joint(env.q_cmd if res.q is None else res.q, res.suction)
        kinds.append(res.status)
    counts = env.episode_metrics()["safety"]
    env.close()
    assert sum(counts.values()) == 0, counts
    assert {"rejected", "clamped", "hold_nan"} <= set(kinds)


def test_a_step_into_a_fixed_obstacle_is_rejected():
    """The bin's walls are the cell's obstacles by default; a box placed where the next
    command would put the tool makes the filter hold, and the same command passes without it."""
    cell = sim_cell()
    assert cell.obstacle_boxes is None and len(cell.obstacles) == 4
    assert SafetyFilter().boxes == (*cell.keepout_boxes, *cell.bin.wall_boxes(0.0))
    q0 = np.array(sim_cell().arm.home_q)
    q1 = q0 + np.array([0.25, 0.0, 0.0, 0.0, 0.0, 0.0])  # base turn: the cup swings ~10 cm
    fast = {"tool_speed_limit": 10.0, "max_tool_lead": 1.0, "tool_accel_limit": 100.0}
    free = SafetyFilter(FilterConfig(**fast), dataclasses.replace(cell, obstacle_boxes=()))
    free.reset(q0)
    assert free.filter(q1, False, q0).status == "ok"
    tip = free.kin.tool_position(q1)
    box = (tuple(tip - 0.01), tuple(tip + 0.01))  # around the commanded cup only
    blocked = SafetyFilter(FilterConfig(**fast), dataclasses.replace(cell, obstacle_boxes=(box,)))
    assert blocked.violation(q0) == 0.0 and blocked.violation(q1) > 0.0
    blocked.reset(q0)
    res = blocked.filter(q1, False, q0)
    assert res.status == "rejected" and "obstacle" in res.reasons[0]
    assert np.array_equal(res.q, q0)  # holds the last safe command


def test_the_command_may_not_run_far_ahead_of_a_lagging_arm():
    """The measured arm lags the last command by 1.5 cm; a command 1.2 cm further on is
    shortened so the commanded tool leads by at most max_tool_lead (2 cm). Without a lag the
    same step passes untouched; a lag across the motion (a static offset) does not hold a
    step back, and a step back towards the arm always passes."""
    flt = SafetyFilter(FilterConfig(tool_accel_limit=100.0))  # about the lead, not ramps
    kin = flt.kin
    q0 = np.array(sim_cell().arm.home_q)
    jac = kin.jacobian(q0)[:3]  # [3, 6] tool position Jacobian
    dx = lambda v: np.linalg.lstsq(jac, np.asarray(v, float), rcond=None)[0]  # noqa: E731
    lag, ahead = q0 - dx([0.015, 0, 0]), q0 + dx([0.012, 0, 0])
    flt.reset(q0)
    free = flt.filter(ahead, False, q0)
    assert free.status == "ok"
    flt.reset(q0)
    res = flt.filter(ahead, False, lag)
    assert res.status == "clamped" and "tool lead limit" in res.reasons
    lead = np.linalg.norm(kin.tool_position(res.q) - kin.tool_position(lag))
    assert lead <= FilterConfig().max_tool_lead + 1e-9
    assert np.linalg.norm(kin.tool_position(res.q) - kin.tool_position(q0)) > 0.001  # not frozen
    far_lag = q0 - dx([0.05, 0, 0])  # 5 cm behind: beyond the limit already
    flt.reset(q0)
    sideways = flt.filter(q0 + dx([0, 0.005, 0]), False, far_lag)
    assert sideways.status in ("ok", "clamped") and "tool lead limit" not in sideways.reasons
    back = flt.filter(q0 - dx([0.01, 0, 0]), False, far_lag)
    assert back.status == "ok"


def test_the_commanded_tool_speeds_up_gradually():
    """From rest, a full-speed step (1.5 cm in 0.1 s) is cut to tool_accel_limit * dt^2 (1 cm);
    the next one may be full length; after a hold the arm is at rest again."""
    flt = SafetyFilter()
    kin, q0 = flt.kin, np.array(sim_cell().arm.home_q)
    jac = kin.jacobian(q0)[:3]
    dx = lambda v: np.linalg.lstsq(jac, np.asarray(v, float), rcond=None)[0]  # noqa: E731
    flt.reset(q0)
    first = flt.filter(q0 + dx([0.015, 0, 0]), False, q0)
    assert first.status == "clamped" and "tool acceleration limit" in first.reasons
    moved = np.linalg.norm(kin.tool_position(first.q) - kin.tool_position(q0))
    assert 0.008 < moved <= 0.01
    tool1 = kin.tool_position(first.q)
    second = flt.filter(first.q + dx([0.015, 0, 0]), False, first.q)
    assert "tool acceleration limit" not in second.reasons
    assert np.linalg.norm(kin.tool_position(second.q) - tool1) > 0.014
    assert flt.filter(second.q, False, second.q, command_age_s=5.0).status == "hold_stale"
    again = flt.filter(second.q + dx([0.015, 0, 0]), False, second.q)
    assert "tool acceleration limit" in again.reasons


def test_after_a_stop_the_next_step_accelerates_from_rest():
    """A command after the arm stopped (a skipped frame) may not start at the last step's
    speed: at_rest() makes the acceleration limit count from standstill again."""
    import copy

    flt = SafetyFilter(FilterConfig())
    q0 = np.array([0.0, -1.2, 1.6, -1.97, -1.57, 0.0])
    flt.reset(q0)
    q, steps = q0.copy(), []
    for _ in range(6):  # accelerate along every joint
        res = flt.filter(q + 0.2, False, q)
        steps.append(float(np.abs(res.q - q).max()))
        q = res.q
    stopped = copy.deepcopy(flt)
    stopped.at_rest()
    moving = flt.filter(q + 0.2, False, q)
    from_rest = stopped.filter(q + 0.2, False, q)
    assert steps[-1] > steps[0]  # it did speed up
    # from rest: about the first step's size (the joint-space step depends on the pose)
    assert np.abs(from_rest.q - q).max() < 0.7 * np.abs(moving.q - q).max()
    assert np.abs(from_rest.q - q).max() < 1.5 * steps[0]
