import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wm_core.train.trainer import TrainConfig, train


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def data(tmp_path_factory, make_tiny_shards):
    out = tmp_path_factory.mktemp("shards")
    make_tiny_shards(out)
    (out / "broken.npz").write_bytes(b"not a zip")  # must be reported, not poison the run
    return out


@pytest.mark.parametrize("collapse", ["vicreg", "ema"])
def test_train_logs_checkpoints_and_resumes(data, tmp_path, collapse, tiny_cfg):
    mcfg = dataclasses.replace(tiny_cfg, collapse=collapse)
    res = train(
        data,
        tmp_path,
        mcfg,
        TrainConfig(steps=6, batch_size=4, horizon=2, log_every=2, ckpt_every=3),
        progress=False,
    )
    assert res.summary["steps"] == 6 and res.summary["bad_shards"] == 1
    assert (tmp_path / "last.pt").is_file()
    rows = read_csv(tmp_path / "metrics.csv")
    assert rows[0][0] == "step" and [r[0] for r in rows[1:]] == ["2", "4", "6"]
    before = {k: v.clone() for k, v in res.model.state_dict().items()}
    res2 = train(
        data,
        tmp_path,
        mcfg,
        TrainConfig(steps=8, batch_size=4, horizon=2, log_every=2),
        progress=False,
    )
    assert res2.summary["steps"] == 8
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r[0] for r in rows[1:]] == ["2", "4", "6", "8"]  # resumed, not restarted
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["step"] == 8 and ckpt["version"] == 2
    assert any(not torch.equal(before[k], v) for k, v in res2.model.state_dict().items())
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["final"]["loss"] > 0 and summary["samples_per_s"] > 0
    assert 1 <= summary["final"]["effective_rank"] <= mcfg.latent_dim
    for png in ("losses.png", "rankme.png", "offdiag.png", "dim_std.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_wrong_checkpoint_version_is_named(data, tmp_path, tiny_cfg):
    torch.save({"version": 99}, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="checkpoint version 99, expected 2"):
        train(
            data, tmp_path, tiny_cfg, TrainConfig(steps=1, batch_size=2, horizon=2), progress=False
        )


def test_ddp_two_cpu_processes_keep_weights_in_sync(data, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29631",
            str(worker),
            str(data),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0, msg=k)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["model"]  # written by rank 0
    for k in w0:
        torch.testing.assert_close(saved[k], w0[k], rtol=0, atol=0, msg=k)


def test_train_cli(data, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "wm_core.cli",
        "train",
        "all",
        "--data",
        str(data),
        "--out",
        str(tmp_path),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--image-size",
        "64",
        "--quiet",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trained 2 steps" in r.stdout and "1 bad shards skipped" in r.stdout
    r = subprocess.run([*cmd, "--collapse", "nope"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "collapse='nope' must be 'vicreg' or 'ema'" in r.stderr


def _changed(before: dict, after: dict, prefix: str) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


def test_encoder_then_world_model_stages(data, tmp_path, tiny_cfg):
    """'encoder' trains the encoder and leaves the proprioception head alone; 'world-model'
    starts from it (--init), keeps the encoder frozen and trains the predictor."""
    from wm_core.models import WorldModel

    torch.manual_seed(0)
    init = {k: v.clone() for k, v in WorldModel(tiny_cfg).state_dict().items()}
    tc = dict(steps=3, batch_size=4, horizon=2, log_every=1)
    enc = train(data, tmp_path / "enc", tiny_cfg, TrainConfig(mode="encoder", **tc), False)
    e_state = {k: v.clone() for k, v in enc.model.state_dict().items()}
    assert _changed(init, e_state, "encoder.")
    assert not _changed(init, e_state, "predictor.proprio.")
    assert "proprio" not in enc.summary["final"]
    wm = train(
        data,
        tmp_path / "wm",
        tiny_cfg,
        TrainConfig(mode="world-model", init=str(tmp_path / "enc" / "last.pt"), **tc),
        False,
    )
    w_state = wm.model.state_dict()
    assert not _changed(e_state, w_state, "encoder.")
    assert _changed(e_state, w_state, "predictor.proprio.")
    assert "tool_probe" not in wm.summary["final"] and "proprio" in wm.summary["final"]


def test_world_model_mode_needs_an_encoder(data, tmp_path, tiny_cfg):
    from wm_core.models.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="--init"):
        train(data, tmp_path, tiny_cfg, TrainConfig(steps=1, mode="world-model"), False)
    with pytest.raises(ValueError, match="mode='decoder'"):
        TrainConfig(mode="decoder")


def test_generative_baseline_trains_on_pixels(data, tmp_path, tiny_cfg):
    mcfg = dataclasses.replace(tiny_cfg, objective="generative")
    res = train(data, tmp_path, mcfg, TrainConfig(steps=3, batch_size=4, horizon=2), False)
    final = res.summary["final"]
    assert final["recon_pixels"] > 0 and "vicreg_var" not in final
    assert res.model.decoder is not None
    x = torch.rand(2, 3, 64, 64)
    assert res.model.decoder(res.model.encode(x)).shape == (2, 3, 16, 16)  # 4G, G = 4


def test_device_is_validated_and_reported(data, tmp_path, tiny_cfg):
    from wm_core.train.trainer import resolve_device

    with pytest.raises(ValueError, match="device='tpu'"):
        TrainConfig(device="tpu")
    res = train(data, tmp_path, tiny_cfg, TrainConfig(steps=1, batch_size=2, device="cpu"), False)
    assert res.summary["device"] == "cpu"
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
