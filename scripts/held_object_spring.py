"""Which held-object motions make the MuJoCo arm spring past the tool-speed limit (issue 12).

The world scores a tool-speed event when the tool's peak speed over a tick's physics steps
passes 0.25 m/s. Commands are limited to 0.157 m/s of desired motion (one 1.57 cm tool step per
0.1 s tick), so an event means the physics, not the command, made the speed. This script drives
the world offline (no ROS, no planner) through the same ``step_joint`` the world node uses:

1. ``pick``: full-speed descent with the suction on onto an object resting on the table, the
   desired going 0-30 mm below the object's top (the task aims 30 mm below), two ticks there,
   then a full-speed lift;
2. ``free``: with an object held in the air, desired-motion steps (rest to full speed, full
   speed to rest, reversal, stop-start);
3. ``table``: with an object held in the air, a full-speed descent until it meets the table;
4. ``filtered``: the same descent, commanded at 0.157, 0.1, 0.05 and 0.03 m/s, each command
   through the safety filter (``wm_core.safety.SafetyFilter``: its lead and acceleration limits
   against the measured joints), as the stack sends it.

Usage: ``.venv/bin/python scripts/held_object_spring.py`` (about 1 min on one core). It prints
the peak tool speed per case.
"""

from __future__ import annotations

import numpy as np

from wm_core.eval.policies import OraclePolicy
from wm_core.safety import FilterConfig, SafetyFilter
from wm_core.sim import SceneConfig, TableClearingEnv

STEP = 0.0157  # m of tool motion per 0.1 s tick: the filter's 0.157 m/s
SEEDS = (3, 5, 8, 11)


def move(env, q, tool, goal, suction):
    """Full-speed straight-line tool motion to ``goal`` [3]; returns (q, tool, peak speed)."""
    peak = 0.0
    for _ in range(300):
        d = goal - tool
        n = float(np.linalg.norm(d))
        if n < 1e-5:
            break
        tool = tool + d * min(1.0, STEP / n)
        q = env.kin.ik_tool_down(tool, q).q
        *_, info = env.step_joint(q, suction)
        peak = max(peak, info["tool_speed_peak"])
    return q, tool, peak


def pick(env, seed, depth):
    obs, info = env.reset(seed)
    obj, z0 = info["object_pos"][0], env.cell.table.top_z
    top = z0 + 2 * (obj[2] - z0)  # a resting object's centre is half its height up
    q = env.q_cmd.copy()
    tool = env.kin.tool_position(q)
    q, tool, _ = move(env, q, tool, np.array([obj[0], obj[1], top + 0.06]), False)
    for _ in range(5):
        *_, info = env.step_joint(q, False)
    q, tool, down = move(env, q, tool, np.array([obj[0], obj[1], top - depth]), True)
    press = 0.0
    for _ in range(2):
        obs, _, _, _, info = env.step_joint(q, True)
        press = max(press, info["tool_speed_peak"])
    held = bool(obs["suction_held"][0] > 0.5)
    q, tool, up = move(env, q, tool, tool + np.array([0, 0, 0.09]), True)
    return held, max(down, press, up)


def held_in_air(env, seed):
    """Reset, pick the object with the oracle and lift it 9 cm; False if no grip."""
    obs, info = env.reset(seed)
    policy = OraclePolicy(env.cfg, env.cell)
    policy.reset(seed)
    for _ in range(400):
        obs, _, _, _, info = env.step(policy.act(obs, info))
        if obs["suction_held"][0] > 0.5:
            for _ in range(6):
                obs, *_ = env.step(np.array([0.0, 0.0, 1.0, 1.0]))
            for _ in range(3):  # settle
                env.step_joint(env.q_cmd.copy(), True)
            return True
    return False


PATTERNS = {
    "rest to full speed": [0] * 3 + [1] * 6,
    "full speed to rest": [1] * 6 + [0] * 4,
    "reversal": [1] * 6 + [-1] * 6,
    "stop-start": [1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1],
}


def free(env, seed, direction, pattern):
    if not held_in_air(env, seed):
        return None
    q = env.q_cmd.copy()
    tool = env.kin.tool_position(q)
    u = np.asarray(direction, float) / np.linalg.norm(direction)
    peak = 0.0
    for s in pattern:
        tool = tool + STEP * s * u
        q = env.kin.ik_tool_down(tool, q).q
        *_, info = env.step_joint(q, True)
        peak = max(peak, info["tool_speed_peak"])
    return peak


def onto_table(env, seed):
    if not held_in_air(env, seed):
        return None, []
    q = env.q_cmd.copy()
    tool = env.kin.tool_position(q)
    peak, touched = 0.0, set()
    for _ in range(12):
        tool = tool + np.array([0.0, 0.0, -STEP])
        q = env.kin.ik_tool_down(tool, q).q
        *_, info = env.step_joint(q, True)
        peak = max(peak, info["tool_speed_peak"])
        touched |= set(info.get("held_contacts", ()))
    return peak, sorted(touched)


def filtered_onto_table(env, seed, speed):
    """A held object lowered at ``speed`` (m/s desired) for 4 s, every command through the
    safety filter (the stack's default limits) against the measured joints."""
    if not held_in_air(env, seed):
        return None, []
    q = env.q_cmd.copy()
    flt = SafetyFilter(FilterConfig(), cell=env.cell)
    flt.reset(q, True)
    tool = env.kin.tool_position(q)
    peak, touched = 0.0, set()
    for _ in range(40):
        tool = tool + np.array([0.0, 0.0, -speed * 0.1])
        res = flt.filter(env.kin.ik_tool_down(tool, q).q, True, env.joint_positions())
        q = res.q
        *_, info = env.step_joint(q, True)
        peak = max(peak, info["tool_speed_peak"])
        touched |= set(info.get("held_contacts", ()))
    return peak, sorted(touched)


def main() -> None:
    env = TableClearingEnv(SceneConfig(n_objects=1, render_images=False))
    limit = env.cfg.tool_speed_limit
    print(f"tool-speed limit {limit} m/s; commands at most {STEP / 0.1:.3f} m/s")
    for depth in (0.0, 0.004, 0.008, 0.016, 0.03):
        runs = [pick(env, s, depth) for s in SEEDS]
        peak = max(p for _, p in runs)
        grips = sum(h for h, _ in runs)
        print(
            f"pick, desired {depth * 1000:2.0f} mm below the top: peak {peak:.3f} m/s "
            f"({grips}/{len(SEEDS)} gripped)"
        )
    dirs = ([1, 0, 0], [0, 1, 0], [0, 0, 1], [0.7, 0.7, 0])
    for name, pattern in PATTERNS.items():
        peaks = [free(env, s, d, pattern) for s in SEEDS[:3] for d in dirs]
        peaks = [p for p in peaks if p is not None]
        print(f"held in the air, {name}: peak {max(peaks):.3f} m/s over {len(peaks)} runs")
    for s in SEEDS[:3]:
        peak, touched = onto_table(env, s)
        print(
            f"held in the air, lowered onto the table (seed {s}): peak {peak:.3f} m/s, "
            f"the held object touched {touched}"
        )
    for speed in (STEP / 0.1, 0.1, 0.05, 0.03):
        runs = [filtered_onto_table(env, s, speed) for s in SEEDS[:3]]
        peaks = [p for p, _ in runs if p is not None]
        touched = sorted({t for _, ts in runs for t in ts})
        print(
            f"held, lowered onto the table at {speed:.3f} m/s through the safety filter: peak "
            f"{max(peaks):.3f} m/s over {len(peaks)} runs, the held object touched {touched}"
        )


if __name__ == "__main__":
    main()
