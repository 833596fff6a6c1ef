"""The safety node's decisions (``wm_safety.gate.CommandGate``) on a clock the test sets: no
DDS, no threads, so the watchdog's timing is exact here (over DDS, in test_safety_node.py, a
process stall can delay it)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")  # the ROS workspace's packages are on the path with it

from wm_bringup.msgs import Trajectory  # noqa: E402
from wm_safety.gate import CommandGate, Output  # noqa: E402

from wm_core.cell import sim_cell  # noqa: E402
from wm_core.safety import FilterConfig  # noqa: E402

HOME = np.array(sim_cell().arm.home_q)
STALE = 0.4
DT = 0.1


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, msg: str, **_) -> None:
        self.lines.append(msg)

    info = error = warning


class Rig:
    """A gate, a clock, the outputs it sent."""

    def __init__(self, active: bool = True) -> None:
        self.t, self.active, self.sent = 100.0, active, []
        self.wall = 5000.0  # the wall clock: it goes on where a simulator's clock stops
        self.log = Log()
        cfg = FilterConfig(control_dt=DT, stale_after_s=STALE)
        self.gate = CommandGate(
            cfg, sim_cell(), 0.5, lambda: self.t, self._out, self.log, wall=lambda: self.wall
        )
        self.gate.activated()

    def _out(self, o: Output) -> bool:
        if self.active:
            self.sent.append((self.t, o))
        return self.active

    def joints(self, q=HOME, restarted=False) -> None:
        self.gate.joints(np.asarray(q, float), False, restarted, True)

    def command(self, q, stamp_s=None) -> None:
        traj = Trajectory(np.array([DT]), np.asarray(q, float)[None], None, 0.0)
        self.gate.command(traj, "header" if stamp_s is not None else None, stamp_s)

    def run(self, seconds: float, joints: bool = True, commands=None) -> None:
        """Advance in 10 ms steps: joint states every 20 ms, the watchdog every 50 ms."""
        for k in range(round(seconds / 0.01)):
            self.t += 0.01
            self.wall += 0.01
            if joints and k % 2 == 0:
                self.joints(self.gate.q if self.gate.q is not None else HOME)
            if commands is not None and k % 10 == 0:
                self.command(commands, self.t)
            if k % 5 == 0:
                self.gate.watchdog()


def test_commands_pass_with_their_source_and_the_watchdog_holds_once_they_stop():
    r = Rig()
    r.joints()
    target = HOME + [0.0, 0.01, 0.0, 0.0, 0.0, 0.0]
    r.run(1.0, commands=target)
    assert r.gate.holding is None and r.sent
    assert all(o.source == "header" and o.status != "held" for _, o in r.sent)
    t_last = r.gate.cmd_time
    n = len(r.sent)
    r.run(1.0)  # commands stop; joint states go on
    holds = r.sent[n:]
    assert len(holds) == 1 and holds[0][1].status == "held" and holds[0][1].source is None
    # within one watchdog period (50 ms) after stale_after_s
    assert STALE < holds[0][0] - t_last <= STALE + 0.05 + 1e-9
    assert r.gate.holding == "commands stale"
    # the hold keeps the last point sent, where the controller is headed
    np.testing.assert_allclose(holds[0][1].qs[0], r.sent[n - 1][1].qs[-1])
    r.command(target, r.t)
    assert r.gate.holding is None
    assert any("commands resumed" in line for line in r.log.lines)


def test_after_the_stale_joint_states_hold_commands_get_no_answer():
    r = Rig()
    r.joints()
    r.run(0.3, commands=HOME)
    r.run(1.0, joints=False, commands=HOME)  # the arm's driver is gone; the planner is not
    assert r.gate.holding == "joint states stale"
    held_at = next(t for t, o in r.sent if o.status == "held" and o.source is None)
    # commands after that hold were not answered: a hold then could reach a restarted arm
    # before its first joint state reaches the node
    assert all(t <= held_at for t, _ in r.sent)
    unsent = r.gate.stats["holds_unsent"]
    assert unsent >= 5
    r.gate.hold("e-stop", resync=True)
    assert r.gate.stats["holds_unsent"] == unsent + 1
    r.joints()  # the driver is back: commands are answered again
    r.command(HOME, r.t)
    assert r.sent[-1][0] == r.t


def test_a_latched_estop_holds_every_command_and_a_restart_resyncs_where_the_arm_is():
    r = Rig()
    r.joints()
    r.run(0.3, commands=HOME)
    r.gate.estop("/wm/estop")
    latched_at = r.sent[-1][1].qs[0]
    np.testing.assert_allclose(latched_at, HOME)
    r.command(HOME + [0.2, 0.0, 0.0, 0.0, 0.0, 0.0], r.t)
    np.testing.assert_allclose(r.sent[-1][1].qs[0], latched_at)  # held, not moved
    # the arm's driver restarted 0.03 rad away: one hold where that arm stands
    moved = HOME + [0.03, 0.0, 0.0, 0.0, 0.0, 0.0]
    r.joints(moved, restarted=True)
    np.testing.assert_allclose(r.sent[-1][1].qs[0], moved)
    r.command(HOME + [0.2, 0.0, 0.0, 0.0, 0.0, 0.0], r.t)
    np.testing.assert_allclose(r.sent[-1][1].qs[0], moved)  # the latched hold stays there
    assert r.gate.filter.estopped == "/wm/estop"


def test_malformed_empty_and_early_commands():
    r = Rig()
    r.command(HOME, r.t)  # no joint state yet: dropped
    assert r.sent == [] and "no joint state yet" in r.log.lines[-1]
    r.joints()
    r.gate.command(None, None, None, "3 names for 6 joints")
    assert r.gate.holding == "malformed command" and r.gate.stats["malformed"] == 1
    assert "malformed command held: 3 names for 6 joints" in r.log.lines
    r.gate.command(Trajectory(np.zeros(0), np.zeros((0, 6)), None, 0.0), "h", r.t)
    assert r.gate.holding == "empty command (stop)" and r.sent[-1][1].source == "h"


def test_an_inactive_node_sends_nothing_and_counts_nothing_sent():
    r = Rig(active=False)
    r.joints()
    r.command(HOME, r.t)
    assert r.sent == [] and r.gate.stats["sent"] == 0 and r.gate.sent_end is None


def test_a_dead_simulator_stops_its_clock_and_the_latched_holds_stop_with_it():
    """The simulator is the arm and the clock: SIGKILLed, its clock stands still, so on the
    node's clock its last joint state never ages. By the wall clock it does: while latched,
    commands get no answer once the joint states are gone (a hold at the old target could reach
    the respawned simulator before its first joint state reaches the node, and move its arm);
    the new arm's first joint state re-syncs the latched hold where it stands."""
    r = Rig()
    r.joints()
    r.run(0.3, commands=HOME)
    r.gate.estop("/wm/estop")
    n = len(r.sent)
    r.command(HOME, r.t)  # latched: answered with the hold while the arm is alive
    assert len(r.sent) == n + 1
    r.wall += 2.0  # the simulator dies: its clock (r.t) stands still, the wall clock goes on
    r.command(HOME + [0.1, 0, 0, 0, 0, 0], r.t)
    r.gate.command(Trajectory(np.zeros(0), np.zeros((0, 6)), None, 0.0), None, None)
    assert len(r.sent) == n + 1 and r.gate.stats["holds_unsent"] == 2
    new_arm = HOME + [0.03, 0, 0, 0, 0, 0]
    r.t = 0.1  # the respawned simulator's clock starts again
    r.joints(new_arm, restarted=True)
    assert len(r.sent) == n + 2
    np.testing.assert_allclose(r.sent[-1][1].qs[0], new_arm)
