import json
import subprocess
import sys

import numpy as np
import pytest

from wm_core.data.collect import CollectConfig, collect, shard_path
from wm_core.data.shards import ShardError, load_shard, scan_shards
from wm_core.sim import SceneConfig

CFG = CollectConfig(steps_per_episode=12, image_size=32)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    res = collect(out, 3, 2, 40, SceneConfig(n_objects=2), CFG, progress=False)
    assert res["collected"] == 3 and res["skipped_existing"] == 0
    return out


def test_shard_layout_and_labels_kept_apart(shards):
    ep = load_shard(shard_path(shards, 40))
    n = ep.n_steps + 1
    assert ep.obs["image"].shape == (n, 32, 32, 3) and ep.obs["image"].dtype == np.uint8
    assert ep.obs["joint_pos"].shape == (n, 6) and ep.action.shape == (n - 1, 4)
    assert ep.labels is None  # ground truth only on request
    assert ep.meta["mode"] in ("oracle", "noisy_oracle", "mixed") and ep.meta["seed"] == 40
    labelled = load_shard(shard_path(shards, 40), with_labels=True)
    assert labelled.labels["object_pos"].shape == (n, 2, 3)
    assert labelled.labels["tool_pos"].shape == (n, 3)
    assert np.all(np.abs(ep.action) <= 1)


def test_collection_is_deterministic_and_resumable(shards, tmp_path):
    res = collect(shards, 3, 1, 40, SceneConfig(n_objects=2), CFG, progress=False)
    assert res == {**res, "collected": 0, "skipped_existing": 3}
    again = collect(tmp_path, 1, 1, 41, SceneConfig(n_objects=2), CFG, progress=False)
    assert again["collected"] == 1
    a, b = load_shard(shard_path(shards, 41)), load_shard(shard_path(tmp_path, 41))
    np.testing.assert_array_equal(a.obs["joint_pos"], b.obs["joint_pos"])
    np.testing.assert_array_equal(a.action, b.action)


def test_corrupt_and_truncated_shards_name_the_file(shards, tmp_path):
    good = shard_path(shards, 42).read_bytes()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(good[: len(good) // 2])
    with pytest.raises(ShardError, match="trunc.npz"):
        load_shard(trunc)
    flipped = bytearray(good)
    flipped[len(flipped) // 3] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ShardError, match="flipped.npz"):
        load_shard(bad)
    (tmp_path / "ok.npz").write_bytes(good)
    episodes, errors = scan_shards(tmp_path)
    assert len(episodes) == 1 and len(errors) == 2  # bad shards skipped, and reported


def test_wrong_version_and_nan_are_rejected(tmp_path):
    base = dict(
        format_version=np.array(1),
        meta=np.array(json.dumps({})),
        action=np.zeros((2, 4), np.float32),
    )
    obs = {
        "obs/joint_pos": np.zeros((3, 6), np.float32),
        "obs/joint_vel": np.zeros((3, 6), np.float32),
        "obs/suction": np.zeros((3, 1), np.float32),
    }
    p = tmp_path / "v2.npz"
    np.savez(p, **{**base, **obs, "format_version": np.array(2)})
    with pytest.raises(ShardError, match="version 2, expected 1"):
        load_shard(p)
    nan = dict(obs)
    nan["obs/joint_pos"] = np.full((3, 6), np.nan, np.float32)
    p = tmp_path / "nan.npz"
    np.savez(p, **base, **nan)
    with pytest.raises(ShardError, match="NaN"):
        load_shard(p)


def wm(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "wm_core.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_collect_cli(tmp_path):
    out = str(tmp_path)
    r = wm(
        "collect",
        "--episodes",
        "1",
        "--workers",
        "1",
        "--steps",
        "3",
        "--image-size",
        "16",
        "--seed",
        "5",
        "--out",
        out,
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert shard_path(tmp_path, 5).is_file()
    assert json.loads((tmp_path / "collect.json").read_text())["collected"] == 1
    r = wm("collect", "--episodes", "1", "--workers", "0", "--out", out)
    assert r.returncode == 2 and "--workers 0 must be in [1, 64]" in r.stderr
