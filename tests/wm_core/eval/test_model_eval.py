import json
import math

import pytest
import torch

from wm_core.eval.model_eval import CheckpointError, evaluate_model, load_checkpoint
from wm_core.train.trainer import TrainConfig, train


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, make_tiny_shards, tiny_cfg):
    data = tmp_path_factory.mktemp("data")
    make_tiny_shards(data, steps=10)
    run = tmp_path_factory.mktemp("run")
    train(data, run, tiny_cfg, TrainConfig(steps=3, batch_size=4, horizon=2), progress=False)
    return run / "last.pt"


def test_model_report_fields(ckpt, tmp_path):
    r = evaluate_model(ckpt, episodes=2, seed=500, out=tmp_path, steps=16)
    saved = json.loads((tmp_path / "model_report.json").read_text())
    assert saved["embedding_dim"] == 8 and saved["probe_test_seeds"] == [501, 501]
    for key in (
        "min_dim_std",
        "effective_rank",
        "probe_r2_tool",
        "probe_r2_objects",
        "rollout_error_h1",
        "rollout_error_h5",
        "rollout_error_h10",
        "rollout_error_ratio_h5",
        "copy_last_error_h5",
    ):
        assert isinstance(r[key], float) and math.isfinite(r[key]), key
    assert 1 <= r["effective_rank"] <= 8
    assert r["rollout_error_ratio_h5"] == pytest.approx(
        r["rollout_error_h5"] / r["copy_last_error_h5"]
    )


def test_checkpoint_errors_name_versions_and_shapes(ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    state = torch.load(ckpt, weights_only=True)
    torch.save({**state, "version": 7}, tmp_path / "v7.pt")
    with pytest.raises(CheckpointError, match="checkpoint version 7, expected 2"):
        load_checkpoint(tmp_path / "v7.pt")
    cfg = dict(state["model_config"], latent_dim=16)
    torch.save({**state, "model_config": cfg}, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"has shape \[8, .*expects \[16, "):
        load_checkpoint(tmp_path / "shape.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a valid or safe checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_model_report_on_recorded_shards_with_their_cell(ckpt, make_tiny_shards, tmp_path):
    from wm_core.cell import PYBULLET_CELL_FILE, load_cell

    data = make_tiny_shards(tmp_path / "shards", episodes=2, steps=16)
    cell = load_cell(PYBULLET_CELL_FILE)
    r = evaluate_model(ckpt, 0, 0, tmp_path / "out", data=data, cell=cell)
    saved = json.loads((tmp_path / "out" / "model_report.json").read_text())
    assert saved["episodes"] == 2 and saved["data"] == str(data)
    assert saved["probe_train_episodes"] == ["seed 0"]
    assert saved["probe_test_episodes"] == ["seed 1"]
    assert saved["cell"] == cell.source and saved["label_sources"] == ["simulator"]
    for key in ("probe_r2_tool", "probe_r2_objects", "rollout_error_h5", "rollout_error_ratio_h5"):
        assert isinstance(r[key], float) and math.isfinite(r[key]), key


def test_recorded_shards_the_report_cannot_use_are_refused(ckpt, make_tiny_shards, tmp_path):
    import numpy as np

    from wm_core.data.shards import load_shard, save_shard

    one = make_tiny_shards(tmp_path / "one", episodes=1, steps=10)
    with pytest.raises(ValueError, match="need >= 2 shards"):
        evaluate_model(ckpt, 0, 0, tmp_path / "o1", data=one)
    mixed = make_tiny_shards(tmp_path / "mixed", episodes=2, steps=10)
    path = sorted(mixed.glob("*.npz"))[0]
    ep = load_shard(path, with_labels=True)
    obj = ep.labels["object_pos"]  # [T+1, 1, 3]
    ep.labels["object_pos"] = np.concatenate([obj, obj + 0.1], axis=1)  # [T+1, 2, 3]
    save_shard(path, ep)
    with pytest.raises(ValueError, match=r"different object counts \[1, 2\]"):
        evaluate_model(ckpt, 0, 0, tmp_path / "o2", data=mixed)


def test_the_compact_object_model_is_scored_beside_the_latent_rollout(ckpt, tmp_path):
    from wm_core.models.objects import ObjectDynamics

    torch.manual_seed(0)
    torch.save(ObjectDynamics().to_state(), tmp_path / "objects.pt")
    r = evaluate_model(
        ckpt, episodes=2, seed=500, out=tmp_path, steps=60, objects=tmp_path / "objects.pt"
    )
    assert r["objects"] == str(tmp_path / "objects.pt")
    assert r["moved_objects_h5"] > 0  # the scene has objects that move in 5 steps
    for key in ("object_model_obj_err_cm_h5", "object_model_from_truth_obj_err_cm_h5"):
        assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, key
