"""The eval report says how each episode ended, and flags a false 'done'."""

from types import SimpleNamespace

import numpy as np

from wm_core.eval.runner import build_report, episode_ending
from wm_core.sim import SceneConfig
from wm_core.sim.safety import EVENT_KINDS


def fake_env():
    spec = lambda n: SimpleNamespace(  # noqa: E731
        name=n, shape="box", half_size=(0.02, 0.03, 0.021), rgba=(0.9, 0.8, 0.3, 1.0)
    )
    return SimpleNamespace(objects=[spec("obj0"), spec("obj1"), spec("obj2")])


def info(cleared, dropped=(False, False, False)):
    pos = np.array([[0.4, 0.0, 0.02], [0.5, 0.1, 0.02], [0.2, 0.48, 0.02]])  # [3, 3]
    return {"cleared": np.array(cleared), "dropped": np.array(dropped), "object_pos": pos}


class Policy:
    def __init__(self, done, gave_up=False):
        self.done, self.gave_up = done, gave_up

    def object_probability(self, points):
        return np.full(len(points), 0.07)  # [K]


def record(ending):
    base = {"seed": 0, "objects": 3, "cleared": 2, "dropped": 0, "sim_time_s": 30.0}
    base |= {"safety": dict.fromkeys(EVENT_KINDS, 0), "filter": {}, "latencies_ms": [1.0]}
    return base | ending


def test_done_with_an_object_left_is_a_false_done_with_the_object_described():
    e = episode_ending(
        fake_env(), Policy(done=True), info([False, True, False], [False, False, True]), False
    )
    assert e["ended_by"] == "done" and e["false_done"]
    (left,) = e["left_on_table"]  # obj2 was dropped: off the table, not left on it
    assert left["name"] == "obj0" and left["rgb"] == [0.9, 0.8, 0.3]
    assert left["pos"] == [0.4, 0.0, 0.02] and left["readout_prob"] == 0.07


def test_other_endings_are_not_false_dones():
    env, some_left = fake_env(), info([True, False, True])
    gave_up = episode_ending(env, Policy(done=True, gave_up=True), some_left, False)
    assert gave_up["ended_by"] == "gave_up" and not gave_up["false_done"]
    timed_out = episode_ending(env, Policy(done=False), some_left, False)
    assert timed_out["ended_by"] == "time_limit" and not timed_out["false_done"]
    cleared = episode_ending(env, Policy(done=False), info([True, True, True]), True)
    assert cleared == {"ended_by": "cleared", "false_done": False, "left_on_table": []}


def test_the_report_counts_false_dones_and_endings():
    env = fake_env()
    endings = [
        episode_ending(env, Policy(done=True), info([True, False, True]), False),
        episode_ending(env, Policy(done=False), info([True, True, True]), True),
        episode_ending(env, Policy(done=False), info([True, False, True]), False),
    ]
    records = [record(e) for e in endings]
    stats = {"plan_ms": [1.0], "act_ms": [2.0], "surprise_events": 0, "holds": 0}
    stats |= {"bad_input": 0, "verifications": 2, "verify_found": 1}
    records[1]["policy_stats"] = stats
    rep = build_report("x", 0, SceneConfig(), records)
    assert rep["false_done_episodes"] == 1
    assert rep["ended_by"] == {"cleared": 1, "done": 1, "gave_up": 0, "time_limit": 1}
    assert [p["false_done"] for p in rep["per_episode"]] == [True, False, False]
    assert rep["per_episode"][0]["left_on_table"][0]["name"] == "obj1"
    assert rep["per_episode"][1]["done_verifications"] == 2
    assert rep["per_episode"][1]["verify_found"] == 1
    assert "done_verifications" not in rep["per_episode"][0]
    assert rep["done_verifications"] == 2 and rep["done_verifications_that_found_objects"] == 1
