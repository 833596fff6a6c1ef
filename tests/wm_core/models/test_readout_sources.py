"""Object readouts that read a finer encoder stage than the latent (``--source stage3``): the
tap, the split into raw map + decode, the message packing, training, loading, and the policy."""

import numpy as np
import pytest
import torch

from wm_core.cell import PYBULLET_CELL_FILE, load_cell
from wm_core.models import ModelConfig, WorldModel
from wm_core.models.checkpoint import CheckpointError, save_inference_checkpoint
from wm_core.models.readout import map_rows, pack_map, unpack_map
from wm_core.plan.policy import LatentMPCPolicy
from wm_core.train.readout import (
    load_readout,
    new_readout,
    priors_for,
    source_shape,
    targets_for,
    train_readout,
)


def test_the_tap_is_the_encoders_own_path():
    """encode_tap gives the same latent as encode, and stage N's map at S / 2**N."""
    torch.manual_seed(0)
    model = WorldModel(ModelConfig()).eval()
    x = torch.rand(2, 3, 128, 128)  # [B, 3, S, S]
    with torch.no_grad():
        z, f3 = model.encode_tap(x, 3)
        _, f2 = model.encode_tap(x, 2)
        assert torch.allclose(z, model.encode(x), atol=1e-6)
    assert f3.shape == (2, 16 * 16, 64) and f2.shape == (2, 32 * 32, 48)
    assert source_shape(model, "stage3") == (16, 64) and source_shape(model, "latent") == (8, 32)
    with pytest.raises(ValueError, match="stage 7 is not in 1..4"):
        model.encode_tap(x, 7)
    with pytest.raises(ValueError, match="readout source 'stage9' must be one of"):
        source_shape(model, "stage9")


def test_a_finer_readout_has_finer_priors_and_targets():
    """A stage-3 readout's patches are a quarter of the latent's: its priors lie on the cell's
    table and an object falls into one of its 16 x 16 patches."""
    model = WorldModel(ModelConfig())
    cell = load_cell(PYBULLET_CELL_FILE)
    pri = priors_for(model, cell, "stage3")  # [16, 16, 3]
    assert pri.shape == (16, 16, 3)
    assert np.allclose(pri[..., 2], cell.table.top_z + 0.025)
    occ, pos = targets_for(model, np.array([[[0.45, 0.05, -0.015]]]), cell, "stage3")
    assert occ.shape == (1, 16, 16) and int(occ.sum()) == 1
    assert torch.allclose(pos[occ > 0], torch.tensor([[0.45, 0.05, -0.015]]))


def test_raw_map_then_decode_is_the_readout():
    """raw() in one place and decode()/detect_map() in another give what forward()/detect()
    give in one (what perception and planner split between them)."""
    torch.manual_seed(0)
    model = WorldModel(ModelConfig()).eval()
    ro = new_readout(model, 16, load_cell(PYBULLET_CELL_FILE), "stage3").eval()
    with torch.no_grad():
        ro.conv[-1].bias[0] = 4.0  # every patch an object: detections to compare
        _, f = model.encode_tap(torch.rand(1, 3, 128, 128), 3)
        logit, xyz = ro(f)
        raw = ro.raw(f)  # [1, 4, 16, 16]
        logit2, xyz2 = ro.decode(raw)
    assert raw.shape == (1, 4, 16, 16)
    assert torch.equal(logit, logit2) and torch.equal(xyz, xyz2)
    a, b = ro.detect(f, 0.5)[0], ro.detect_map(raw, 0.5)[0]
    assert len(a) > 0 and np.array_equal(a, b)


def test_the_map_travels_with_the_latent_and_comes_back_unchanged():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(64, 32)).astype(np.float32)  # [N, D]
    raw = rng.normal(size=(1, 4, 16, 16)).astype(np.float32)
    rows = pack_map(z, raw)
    assert rows.shape == (64 + map_rows(16, 32), 32) == (96, 32)
    z2, raw2 = unpack_map(rows, 64, 16)
    assert np.array_equal(z2, z) and np.array_equal(raw2, raw)
    with pytest.raises(ValueError, match="64 rows, expected 96 .* is perception running"):
        unpack_map(z, 64, 16)
    with pytest.raises(ValueError, match="does not fill rows of 24 floats"):
        map_rows(5, 24)


def test_train_and_load_a_stage3_readout(tmp_path, tiny_cfg, make_tiny_shards):
    """wm train readout --source stage3 writes a readout that says what it reads; loading it
    builds the same; a file naming an unknown source is refused in one line."""
    data = make_tiny_shards(tmp_path / "shards", episodes=3, steps=8)
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg).eval()
    s = train_readout(model, data, tmp_path / "run", steps=5, hidden=8, source="stage3", batch=16)
    assert s["source"] == "stage3" and s["grid"] == 8  # 64 px / 2**3
    ro = load_readout(tmp_path / "run" / "readout.pt", model)
    assert ro.source == "stage3" and ro.grid == 8 and ro.channels == tiny_cfg.enc_channels[2]
    state = torch.load(tmp_path / "run" / "readout.pt")
    state["source"] = "stage9"
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="readout source 'stage9' is not one of"):
        load_readout(tmp_path / "bad.pt", model)
    with pytest.raises(ValueError, match="readout source 'pixels' must be one of"):
        train_readout(model, data, tmp_path / "run2", steps=1, source="pixels")


def _model_dir(tmp_path, source: str):
    torch.manual_seed(0)
    model = WorldModel(ModelConfig()).eval()
    save_inference_checkpoint(tmp_path / "model.pt", model)
    ro = new_readout(model, 8, source=source)
    torch.save(
        {"version": 1, "hidden": 8, "source": source, "state": ro.state_dict()},
        tmp_path / "readout.pt",
    )
    return tmp_path


def test_the_policy_reads_a_stage3_readout_from_the_image(tmp_path):
    """In process the policy computes the map itself; given only a latent (the planner node fed
    by a perception node that did not send the map) it holds and says why."""
    cell = load_cell(PYBULLET_CELL_FILE)
    policy = LatentMPCPolicy(cell=cell, model_dir=_model_dir(tmp_path, "stage3"))
    assert policy.readout_stage == 3
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    q = np.array(cell.arm.home_q)
    a = policy.act({"image": img, "joint_pos": q, "suction": np.array([0.0])})
    assert a.shape == (4,) and "hold" not in policy.last_info
    assert policy.last_map.shape == (1, 4, 16, 16)
    z = torch.zeros(1, 64, 32)
    held = policy.act_latent(z, q, [0.0])
    assert policy.last_info == {"hold": "bad readout map"} and np.allclose(held[:3], 0)
    bad = torch.full((1, 4, 16, 16), float("nan"))
    policy.act_latent(z, q, [0.0], bad)
    assert policy.last_info == {"hold": "bad readout map"}
