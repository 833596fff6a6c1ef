"""Import a rosbag2 recording that the test writes with the same library (rosbags)."""

import subprocess
import sys

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from wm_core.data.bag_import import BagImportError, BagTopics, ImportConfig, import_bag
from wm_core.data.shards import load_shard
from wm_core.robot import ArmKinematics

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
NAMES = ArmKinematics().arm.joint_names
HOME = np.array([np.pi, -1.9, 1.9, -np.pi / 2, -np.pi / 2, 0.0])


def header(t: float, frame: str = "cam"):
    sec = int(t)
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=int((t - sec) * 1e9)),
        frame_id=frame,
    )


def write_bag(
    path,
    plugin,
    n=12,
    encoding="rgb8",
    with_commands=True,
    nan_at=None,
    suction_joint=False,
    suction_topic=False,
    held_frames=(),
    reset_at=None,
    log_offset=0.0,
):
    """``held_frames``: frames at which the vacuum switch (/suction/holding) reads true (it is
    recorded at every frame when given); ``reset_at``: a /wm/sim/reset before that frame;
    ``log_offset``: the recorder's log times this far (s) after the stamps (a simulator's
    stamps are simulated time, the log times wall time)."""
    img_t, js_t = "sensor_msgs/msg/Image", "sensor_msgs/msg/JointState"
    cmd_t = "trajectory_msgs/msg/JointTrajectory"
    with Writer(path, version=9, storage_plugin=plugin) as w:
        ci = w.add_connection("/camera/image_raw", img_t, typestore=TS)
        cj = w.add_connection("/joint_states", js_t, typestore=TS)
        cc = w.add_connection("/arm_controller/joint_trajectory", cmd_t, typestore=TS)
        cs = w.add_connection("/suction", "std_msgs/msg/Bool", typestore=TS)
        ch_ = w.add_connection("/suction/holding", "std_msgs/msg/Bool", typestore=TS)
        cr = w.add_connection("/wm/sim/reset", "std_msgs/msg/Int64", typestore=TS)

        def logged(t):
            return int((t + log_offset) * 1e9)

        for k in range(n):
            t = 100.0 + 0.1 * k
            q = HOME + np.array([0.02 * k, 0, 0, 0, 0, 0])
            if nan_at == k:
                q = q * np.nan
            names, pos = list(NAMES), q.astype(np.float64)
            if suction_joint:  # as wm_sim publishes it: on from step 5
                names, pos = [*names, "suction_cup"], np.append(pos, 1.0 if k >= 5 else 0.0)
            js = T[js_t](
                header=header(t - 0.01, "base"),
                name=names,
                position=pos,
                velocity=np.zeros(len(names)),
                effort=np.zeros(0),
            )
            w.write(cj, logged(t - 0.01), TS.serialize_cdr(js, js_t))
            if suction_topic and k in (0, 5):  # unstamped: timed by when it was logged
                on = T["std_msgs/msg/Bool"](data=k == 5)
                w.write(cs, logged(t - 0.02), TS.serialize_cdr(on, "std_msgs/msg/Bool"))
            if held_frames:
                on = T["std_msgs/msg/Bool"](data=k in held_frames)
                w.write(ch_, logged(t - 0.005), TS.serialize_cdr(on, "std_msgs/msg/Bool"))
            if reset_at == k:
                msg = T["std_msgs/msg/Int64"](data=7)
                w.write(cr, logged(t - 0.03), TS.serialize_cdr(msg, "std_msgs/msg/Int64"))
            ch = 1 if encoding == "mono8" else 3
            data = np.full((48, 64, ch), 10 * k % 255, np.uint8)
            im = T[img_t](
                header=header(t),
                height=48,
                width=64,
                encoding=encoding,
                is_bigendian=0,
                step=64 * ch,
                data=data.reshape(-1),
            )
            w.write(ci, logged(t), TS.serialize_cdr(im, img_t))
            if with_commands:
                pt = T["trajectory_msgs/msg/JointTrajectoryPoint"](
                    positions=(q + np.array([0.02, 0, 0, 0, 0, 0])).astype(np.float64),
                    velocities=np.zeros(0),
                    accelerations=np.zeros(0),
                    effort=np.zeros(0),
                    time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=10**8),
                )
                cmd = T[cmd_t](header=header(t, "base"), joint_names=list(NAMES), points=[pt])
                w.write(cc, logged(t), TS.serialize_cdr(cmd, cmd_t))


@pytest.mark.parametrize("plugin", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_import_bag_both_storage_plugins(tmp_path, plugin):
    bag = tmp_path / "rec"
    write_bag(bag, plugin)
    res = import_bag(bag, tmp_path / "out")
    assert res["steps"] == 11 and res["shards"] == 1 and res["action_source"] == "command"
    ep = load_shard(tmp_path / "out" / "rec_0000.npz", with_labels=True)
    assert ep.obs["image"].shape == (12, 128, 128, 3)
    np.testing.assert_allclose(ep.obs["joint_pos"][3], HOME + [0.06, 0, 0, 0, 0, 0], atol=1e-6)
    # a pan step of 0.02 rad moves the tool ~1 cm: well inside one unit action
    assert np.all(np.abs(ep.action[:, :3]) <= 1) and np.abs(ep.action[:, :3]).max() > 0.1
    assert np.all(ep.action[:, 3] == -1.0)  # no suction topic: off


@pytest.mark.parametrize("source", ["suction_joint", "suction_topic"])
def test_suction_is_read_from_the_joint_states_or_the_suction_topic(tmp_path, source):
    bag = tmp_path / "rec"
    write_bag(bag, StoragePlugin.MCAP, **{source: True})
    import_bag(bag, tmp_path / "out")
    ep = load_shard(tmp_path / "out" / "rec_0000.npz", with_labels=True)
    np.testing.assert_array_equal(ep.obs["suction"][:, 0], [0] * 5 + [1] * 7)
    np.testing.assert_array_equal(ep.action[:, 3], [-1] * 5 + [1] * 6)


def test_remapped_topics_missing_topic_and_bad_encoding(tmp_path):
    bag = tmp_path / "rec"
    write_bag(bag, StoragePlugin.SQLITE3, with_commands=False)
    with pytest.raises(BagImportError, match="'/cam/rgb' not in"):
        import_bag(bag, tmp_path / "o", BagTopics(image="/cam/rgb"))
    res = import_bag(bag, tmp_path / "o")
    assert res["action_source"] == "realised"
    bag2 = tmp_path / "rec16"
    write_bag(bag2, StoragePlugin.SQLITE3, encoding="16UC1")
    with pytest.raises(BagImportError, match="'16UC1' not supported"):
        import_bag(bag2, tmp_path / "o2")


def test_nan_joint_states_are_dropped_not_imported(tmp_path):
    bag = tmp_path / "rec"
    write_bag(bag, StoragePlugin.MCAP, nan_at=4)
    res = import_bag(bag, tmp_path / "o")
    assert res["dropped_frames"] == 1 and res["steps"] == 10


def test_import_bag_cli_errors(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "wm_core.cli",
            "import-bag",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "not a rosbag2 directory" in r.stderr
    assert "Traceback" not in r.stderr
    bag = tmp_path / "rec"
    write_bag(bag, StoragePlugin.MCAP)
    base = [sys.executable, "-m", "wm_core.cli", "import-bag", str(bag), "--out", str(tmp_path)]
    for extra, why in (
        (["--objects", "0"], "expected 1-64 objects"),
        (["--objects", "2"], "vacuum switch"),  # no /suction/holding in this bag
        (["--cell", str(tmp_path / "nope.yaml")], "nope.yaml"),
    ):
        r = subprocess.run([*base, *extra], capture_output=True, text=True)
        assert r.returncode == 2 and why in r.stderr, (extra, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_vacuum_switch_and_labels_from_grips(tmp_path):
    """A bag with the vacuum switch, its log times an hour after its (simulated) stamps: each
    frame gets the switch as it read then; told the scene began with one object, the import
    labels every frame with where the cup gripped it (the frame's joints, FK)."""
    from wm_core.cell import sim_cell

    bag = tmp_path / "rec"
    write_bag(bag, StoragePlugin.MCAP, held_frames=range(5, 9), log_offset=3600.0)
    res = import_bag(bag, tmp_path / "out", objects=1)
    assert res["vacuum_switch"] and res["scenes_labelled"] == 1 and res["human_annotations"] == 1
    assert res["scenes"] == [
        {"steps": 12, "grips": 1, "in_bin": 0, "objects_found": 1, "labelled": True}
    ]
    ep = load_shard(tmp_path / "out" / "rec_0000.npz", with_labels=True)
    np.testing.assert_array_equal(ep.obs["suction_held"][:, 0], [0] * 5 + [1] * 4 + [0] * 3)
    assert ep.meta["object_pos_source"].startswith("suction grips")
    assert ep.meta["annotations"] == {"objects": 1, "scene": 0}
    cup = ep.labels["tool_pos"][5]  # where the switch first read "held"
    z0 = sim_cell().table.top_z
    want = [cup[0], cup[1], (z0 + cup[2]) / 2]
    np.testing.assert_allclose(ep.labels["object_pos"][:5, 0], np.tile(want, (5, 1)), atol=1e-5)
    # held, it moved with the cup
    np.testing.assert_allclose(
        ep.labels["object_pos"][7, 0] - ep.labels["tool_pos"][7], np.subtract(want, cup), atol=1e-5
    )
    # the same bag said to have begun with 2 objects: not explained, no labels, and why
    res = import_bag(bag, tmp_path / "out2", objects=2)
    assert res["scenes_labelled"] == 0 and "annotation says 2" in res["scenes"][0]["why_not"]
    ep = load_shard(tmp_path / "out2" / "rec_0000.npz", with_labels=True)
    assert "object_pos" not in ep.labels and "suction_held" in ep.obs


def test_a_reset_splits_the_bag_into_scenes_and_labels_need_the_switch(tmp_path):
    bag = tmp_path / "rec"
    write_bag(bag, StoragePlugin.MCAP, held_frames=range(2, 4), reset_at=6, log_offset=50.0)
    res = import_bag(bag, tmp_path / "out", objects=1)
    assert res["resets"] == 1 and res["shards"] == 2 and res["human_annotations"] == 2
    first, second = res["scenes"]
    assert first["labelled"] and first["steps"] == 6
    assert not second["labelled"] and second["grips"] == 0  # nothing gripped after the reset
    # the frames logged in the 0.3 s after the reset (6, 7, 8) show the table being set up,
    # possibly the old scene's last frame: dropped, in neither scene
    assert res["dropped_at_resets"] == 3 and second["steps"] == 3  # frames 9-11
    res = import_bag(bag, tmp_path / "out_all", cfg=ImportConfig(reset_settle_s=0.0), objects=1)
    assert res["dropped_at_resets"] == 0 and res["scenes"][1]["steps"] == 6
    ep = load_shard(tmp_path / "out" / "rec_0000.npz", with_labels=True)
    assert ep.labels["object_pos"].shape == (6, 1, 3)

    plain = tmp_path / "plain"
    write_bag(plain, StoragePlugin.MCAP)
    with pytest.raises(BagImportError, match="vacuum switch.*/suction/holding"):
        import_bag(plain, tmp_path / "out3", objects=1)


def test_the_readout_fits_on_the_robots_own_labels(tmp_path, tiny_model_dir):
    """The loop's last step on a tiny model: two scenes labelled from their grips, then
    ``wm train readout --cell`` on them; its summary names the cell and where the labels came
    from."""
    import json

    from wm_core.cell import PYBULLET_CELL_FILE

    bag = tmp_path / "rec"
    held = [*range(2, 4), *range(9, 11)]  # one grip in each scene (after the reset settled)
    write_bag(bag, StoragePlugin.MCAP, held_frames=held, reset_at=6, log_offset=10.0)
    cell = str(PYBULLET_CELL_FILE)
    r = subprocess.run(
        [sys.executable, "-m", "wm_core.cli", "import-bag", str(bag), "--out", str(tmp_path / "d")]
        + ["--objects", "1", "--cell", cell, "--image-size", "64"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "2 of 2 scene(s) explained (2 human annotation(s) used)" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "wm_core.cli", "train", "readout", "--init"]
        + [str(tiny_model_dir / "model.pt"), "--data", str(tmp_path / "d")]
        + ["--out", str(tmp_path / "r"), "--cell", cell, "--steps", "50"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    import torch

    summary = torch.load(tmp_path / "r" / "readout.pt", weights_only=True)["summary"]
    assert summary["cell"].endswith("pybullet.yaml") or "pybullet" in summary["cell"]
    assert summary["label_sources"] == {"suction grips (wm_core.data.grip_labels)": 2}
    assert summary["frames_train"] >= 1 and summary["frames_test"] >= 1
    json.dumps(summary)  # plain values
