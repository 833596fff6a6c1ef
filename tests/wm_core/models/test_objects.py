"""The compact object-level world model (``wm_core.models.objects``) and ``wm train objects``."""

import numpy as np
import pytest
import torch

from wm_core.cell import sim_cell
from wm_core.config import ConfigError
from wm_core.data.shards import Episode, save_shard
from wm_core.models.checkpoint import CheckpointError
from wm_core.models.objects import ObjectDynamics, ObjectDynamicsConfig
from wm_core.robot import ArmKinematics
from wm_core.train.objects import ObjectTrainConfig, load_objects, train_objects

TABLE_Z = sim_cell().table.top_z


def _p(b: int, tool, suction: float) -> torch.Tensor:
    p = torch.zeros(b, 10)
    p[:, 6:9] = torch.as_tensor(tool, dtype=torch.float32)
    p[:, 9] = suction
    return p


def test_rollout_shapes_for_any_object_count():
    m = ObjectDynamics().eval()
    ps = _p(4, [0.4, 0.0, 0.2], 0.0)[:, None].expand(4, 5, 10)  # [B, H, 10]
    p0 = _p(1, [0.4, 0.0, 0.2], 0.0)
    for k in (0, 1, 6):
        obj = torch.rand(k, 3)
        assert m.rollout(obj, p0, ps, TABLE_Z).shape == (4, 5, k, 3)


def test_objects_are_predicted_the_same_in_any_order():
    """One MLP shared by all objects, with a symmetric neighbour term: permuting the objects
    permutes the prediction."""
    torch.manual_seed(0)
    m = ObjectDynamics().eval()
    obj = torch.rand(5, 3) * 0.2 + torch.tensor([0.35, -0.1, TABLE_Z])
    p0 = _p(1, [0.4, 0.0, 0.1], 1.0)
    ps = torch.rand(3, 4, 10)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        a = m.rollout(obj, p0, ps, TABLE_Z)
        b = m.rollout(obj[perm], p0, ps, TABLE_Z)
    torch.testing.assert_close(a[:, :, perm], b)


def test_a_saved_model_loads_and_a_bad_file_is_one_line(tmp_path):
    m = ObjectDynamics(ObjectDynamicsConfig(hidden=16, layers=2))
    torch.save(m.to_state({"note": 1}), tmp_path / "objects.pt")
    back = load_objects(tmp_path / "objects.pt")
    for k, v in m.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v)
    bad = m.to_state()
    bad["state"]["net.0.weight"] = torch.zeros(3, 3)
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="wrong shape") as e:
        load_objects(tmp_path / "shape.pt")
    assert "\n" not in str(e.value)
    nan = m.to_state()
    nan["state"]["net.0.bias"] = nan["state"]["net.0.bias"] * float("nan")
    torch.save(nan, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="not finite"):
        load_objects(tmp_path / "nan.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_objects(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="wm train objects"):
        load_objects(tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="hidden"):
        ObjectDynamicsConfig(hidden=0)


def _synthetic_episode(rng: np.random.Generator, kin: ArmKinematics, steps: int = 60) -> Episode:
    """An arm wandering near home; object 0 starts under the cup and is carried while the
    suction is on (the first 2/3 of the episode), then left where it was let go; object 1
    stays where it is, away from the arm's path."""
    home = np.array(sim_cell().arm.home_q)
    phase = rng.uniform(0, 2 * np.pi, 6)
    t = np.arange(steps + 1)[:, None]
    q = home + 0.25 * np.sin(0.12 * t + phase)  # [T+1, 6]
    tool = np.stack([kin.tool_position(x) for x in q])  # [T+1, 3]
    on = (t[:, 0] < 2 * steps // 3).astype(np.float32)[:, None]  # [T+1, 1]
    carried = tool - [0.0, 0.0, 0.03]
    held = np.where(on > 0, carried, carried[2 * steps // 3 - 1])  # [T+1, 3]
    still = np.tile([0.3, -0.25, TABLE_Z + 0.02], (steps + 1, 1))
    obj = np.stack([held, still], 1).astype(np.float32)  # [T+1, 2, 3]
    return Episode(
        obs={
            "joint_pos": q.astype(np.float32),
            "joint_vel": np.zeros_like(q, np.float32),
            "suction": on,
        },
        action=np.zeros((steps, 4), np.float32),
        meta={"seed": 0},
        labels={"tool_pos": tool.astype(np.float32), "object_pos": obj},
    )


def test_training_learns_that_a_held_object_moves_with_the_tool(tmp_path):
    rng = np.random.default_rng(0)
    kin = ArmKinematics()
    data = tmp_path / "data"
    data.mkdir()
    for i in range(12):
        save_shard(data / f"episode_{i:07d}.npz", _synthetic_episode(rng, kin))
    cfg = ObjectTrainConfig(steps=1200, batch_size=64, hidden=32)
    s = train_objects(data, tmp_path / "run", cfg)
    test = s["test"]
    assert s["episodes_train"] == 11 and s["episodes_test"] == 1
    assert test["moved_objects_h5"] > 10
    # the carried object: far better than "nothing moves", and than the untrained model
    assert test["moved_obj_err_cm_h5"] < 0.3 * test["copy_last_moved_obj_err_cm_h5"], test
    assert test["moved_obj_err_cm_h5"] < 0.3 * s["test_untrained"]["moved_obj_err_cm_h5"]
    model = load_objects(tmp_path / "run" / "objects.pt")
    # and the object the cup is not on stays put while the tool moves past it
    ep = _synthetic_episode(np.random.default_rng(1), kin)
    p = torch.tensor(
        np.concatenate([ep.obs["joint_pos"], ep.labels["tool_pos"], ep.obs["suction"]], 1)
    )  # [T+1, 10]
    obj0 = torch.tensor(ep.labels["object_pos"][0])  # [2, 3]
    with torch.no_grad():
        pred = model.rollout(obj0, p[:1], p[None, 1:6], TABLE_Z)[0, -1]  # [2, 3]
    truth = torch.tensor(ep.labels["object_pos"][5])
    assert float((pred[0] - truth[0]).norm()) < 0.01  # carried, within 1 cm after 5 steps
    assert float((pred[1] - truth[1]).norm()) < 0.005  # still


def test_training_refuses_data_without_object_positions(tmp_path):
    with pytest.raises(ValueError, match="need >= 2 episodes with object positions"):
        train_objects(tmp_path, tmp_path / "run", ObjectTrainConfig(steps=1))
    with pytest.raises(ConfigError, match="horizon"):
        ObjectTrainConfig(horizon=0)


def test_the_shipped_object_model_carries_what_the_cup_holds_and_leaves_the_rest():
    """Plain physics the shipped model must have learnt from its recordings."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "models" / "default" / "objects.pt"
    model = load_objects(path)
    start = torch.tensor([0.45, 0.0, TABLE_Z + 0.15])
    path_xyz = start + torch.arange(6)[:, None] * torch.tensor([0.02, 0.01, 0.0])  # [6, 3]
    held = start + torch.tensor([0.0, 0.0, -0.0255])  # under the cup, as gripped in the sim
    resting = torch.tensor([0.30, -0.20, TABLE_Z + 0.025])
    obj0 = torch.stack([held, resting])  # [2, 3]
    travel = float((path_xyz[-1] - path_xyz[0]).norm())  # 11.2 cm
    for suction in (1.0, 0.0):
        ps = torch.stack([_p(1, x, suction)[0] for x in path_xyz])  # [6, 10]
        with torch.no_grad():
            pred = model.rollout(obj0, ps[:1], ps[None, 1:], TABLE_Z)[0, -1]  # [2, 3]
        if suction:  # carried along, still under the cup
            want = path_xyz[-1] + torch.tensor([0.0, 0.0, -0.0255])
            assert float((pred[0] - want).norm()) < 0.02, pred[0]
        else:  # let go in the air: it falls to the table and does not follow the tool
            assert abs(float(pred[0, 2]) - float(resting[2])) < 0.03, pred[0]
            assert float((pred[0, :2] - held[:2]).norm()) < 0.5 * travel, pred[0]
        assert float((pred[1] - resting).norm()) < 0.005, (suction, pred[1])
