"""Paired domain-randomised frames (``wm collect --paired``) and ``wm train invariance``."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from wm_core.data.collect import CollectConfig, collect, shard_path
from wm_core.data.shards import ShardError, load_shard, save_shard
from wm_core.models import ModelConfig, WorldModel
from wm_core.models.checkpoint import load_checkpoint, save_inference_checkpoint
from wm_core.sim import SceneConfig, TableClearingEnv
from wm_core.train.invariance import InvarianceConfig, latent_gap, load_pairs, train_invariance

DR = SceneConfig(
    n_objects=2,
    appearance_jitter=1.0,
    light_jitter=0.4,
    camera_jitter_deg=3,
    camera_shift=0.03,
    table_height_jitter=0.03,
)


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    out = tmp_path_factory.mktemp("paired")
    cfg = CollectConfig(steps_per_episode=6, image_size=32, paired=True)
    res = collect(out, 4, 1, 70, DR, cfg, progress=False)
    assert res["collected"] == 4
    return out


def test_a_pair_is_the_same_state_with_the_nominal_look(paired):
    ep = load_shard(shard_path(paired, 70), with_labels=True)
    rand, nom = ep.obs["image"], ep.labels["image_nominal"]
    assert rand.shape == nom.shape and nom.dtype == np.uint8
    assert np.abs(rand.astype(int) - nom).mean() > 10  # another look
    # the nominal frame is what the same seed's scene without the look renders in that state
    plain = TableClearingEnv(
        SceneConfig(
            n_objects=2,
            image_size=32,
            camera_jitter_deg=3,
            camera_shift=0.03,
            table_height_jitter=0.03,
        )
    )
    obs, _ = plain.reset(70)
    np.testing.assert_array_equal(obs["image"], nom[0])
    plain.close()
    assert load_shard(shard_path(paired, 70)).labels is None  # privileged, only on request


def test_a_shard_whose_nominal_frames_do_not_match_its_images_is_refused(paired, tmp_path):
    ep = load_shard(shard_path(paired, 71), with_labels=True)
    ep.labels["image_nominal"] = ep.labels["image_nominal"][:, :16]
    with pytest.raises(ShardError, match="image_nominal has shape"):
        save_shard(tmp_path / "bad.npz", ep)
    ep.labels["image_nominal"] = ep.labels["image_nominal"].astype(np.float32)
    with pytest.raises(ShardError, match="image_nominal has float32"):
        save_shard(tmp_path / "bad.npz", ep)


def _model(path):
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(image_size=32)).eval()
    save_inference_checkpoint(path, model)
    return model


def test_invariance_pulls_randomised_latents_to_the_nominal_ones(paired, tmp_path):
    init = tmp_path / "init.pt"
    teacher = _model(init)
    cfg = InvarianceConfig(steps=60, batch_size=8, lr=1e-3, stride=1)
    s = train_invariance(init, paired, tmp_path / "run", cfg)
    assert s["pairs_train"] + s["pairs_test"] == 4 * 7
    assert s["test_gap_after"] < 0.7 * s["test_gap_before"], s
    student = load_checkpoint(tmp_path / "run" / "last.pt")
    rand, nom, bad = load_pairs(paired, stride=1)
    assert bad == 0 and rand.shape == nom.shape
    assert latent_gap(student, rand, nom, teacher) < latent_gap(teacher, rand, nom, teacher)
    # only the encoder trained: the predictor is the starting model's, bit for bit
    for k, v in teacher.state_dict().items():
        if not k.startswith("encoder."):
            assert torch.equal(v, student.state_dict()[k]), k


def test_invariance_cli_needs_paired_data(tmp_path):
    init = tmp_path / "init.pt"
    _model(init)
    plain = tmp_path / "plain"
    collect(plain, 1, 1, 3, SceneConfig(n_objects=1), CollectConfig(3, 32), progress=False)
    cmd = [sys.executable, "-m", "wm_core.cli", "train", "invariance", "--data", str(plain)]
    r = subprocess.run(
        [*cmd, "--init", str(init), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "no paired episodes" in r.stderr, r.stderr
    r = subprocess.run([*cmd, "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and "needs --init" in r.stderr
