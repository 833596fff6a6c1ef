"""wm_bringup.recorder / ``wm record``: real rclpy over real DDS into a rosbag2 MCAP bag that
rosbags reads back and ``wm import-bag`` turns into shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

DOMAIN = 160  # this module uses 160..169

rclpy = pytest.importorskip("rclpy")

import ros_harness  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.duration import Duration  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosbags.interfaces import QosDurability, QosReliability  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402
from rosbags.typesys import get_typestore  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float32, Header, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from wm_bringup.msgs import arm_joint_names, make_trajectory  # noqa: E402
from wm_bringup.nodekit import RELIABLE_QOS, SENSOR_QOS  # noqa: E402
from wm_bringup.recorder import BAG_STORE, BagRecorder, RecorderConfig, record  # noqa: E402

from wm_core.cell import sim_cell  # noqa: E402
from wm_core.cli import main as wm_main  # noqa: E402
from wm_core.data.bag_import import import_bag  # noqa: E402
from wm_core.data.shards import load_shard  # noqa: E402

IMG, JS, CMD = "/camera/image_raw", "/joint_states", "/arm_controller/joint_trajectory"
NAMES = arm_joint_names()
HOME = np.array(sim_cell().arm.home_q)
N = 12
TS = get_typestore(BAG_STORE)


@pytest.fixture
def ros():
    from ros_harness import Ros, fresh_domain

    r = Ros(fresh_domain(DOMAIN))
    yield r
    r.close()


def pixels(k: int) -> np.ndarray:
    """A distinct rgb8 frame per k: [128, 128, 3] uint8."""
    return ((np.arange(128 * 128 * 3).reshape(128, 128, 3) + 7 * k) % 256).astype(np.uint8)


def header(k: int, frame: str) -> Header:
    """Stamps 100 s + 0.1 k: the importer pairs frames and joint states by header stamp."""
    return Header(stamp=Time(sec=100 + k // 10, nanosec=(k % 10) * 100_000_000), frame_id=frame)


def joints(k: int) -> np.ndarray:
    return HOME + np.array([0.02 * k, 0, 0, 0, 0, 0])  # [6]


def publish_round(pubs: dict, k: int) -> None:
    q = joints(k)
    pubs[JS].publish(
        JointState(header=header(k, "base"), name=list(NAMES), position=list(q), velocity=[0.0] * 6)
    )
    img = pixels(k)
    pubs[IMG].publish(
        Image(
            header=header(k, "camera"),
            height=128,
            width=128,
            encoding="rgb8",
            step=128 * 3,
            data=img.tobytes(),
        )
    )
    cmd = make_trajectory(NAMES, (q + np.array([0.02, 0, 0, 0, 0, 0]))[None], [0.1], None)
    cmd.header = header(k, "base")
    pubs[CMD].publish(cmd)


def test_records_images_joints_commands_into_an_mcap_bag_that_imports(ros, tmp_path):
    bag = tmp_path / "rec"
    t_start = time.time_ns()
    rec = ros.add(
        BagRecorder(RecorderConfig(bag, topics=(IMG, JS, CMD, "/wm/estop")), context=ros.context)
    )
    pubs = {
        IMG: ros.publisher(Image, IMG, SENSOR_QOS),
        JS: ros.publisher(JointState, JS, RELIABLE_QOS),
        CMD: ros.publisher(JointTrajectory, CMD, RELIABLE_QOS),
    }
    assert ros.spin_until(ros.linked)
    qos = {t: ros.probe.get_subscriptions_info_by_topic(t)[0].qos_profile for t in pubs}
    assert qos[IMG].reliability == ReliabilityPolicy.BEST_EFFORT  # sensor-data QoS
    assert qos[JS].reliability == qos[CMD].reliability == ReliabilityPolicy.RELIABLE
    graph_hash = {
        t: str(ros.probe.get_publishers_info_by_topic(t)[0].topic_type_hash) for t in pubs
    }
    for k in range(N):
        publish_round(pubs, k)
        assert ros.spin_until(lambda k=k: all(rec.stats[t].received == k + 1 for t in pubs), 5.0)
    summary = rec.close()
    t_end = time.time_ns()

    # the recorder's own account
    assert summary.ok and summary.missed == 0
    assert {t: s.written for t, s in summary.topics.items()} == {
        IMG: N,
        JS: N,
        CMD: N,
        "/wm/estop": 0,
    }
    assert summary.topics["/wm/estop"].msgtype == "std_msgs/msg/Bool"  # subscribed, silent

    # a standard rosbag2 directory with MCAP storage
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap"
    assert meta["relative_file_paths"] == ["rec.mcap"] and (bag / "rec.mcap").is_file()
    assert meta["version"] == 9 and meta["message_count"] == 3 * N
    assert (bag / "rec.mcap").read_bytes()[:8] == b"\x89MCAP0\r\n"

    with Reader(bag) as reader:
        conns = {c.topic: c for c in reader.connections}
        assert {t: c.msgtype for t, c in conns.items()} == {
            IMG: "sensor_msgs/msg/Image",
            JS: "sensor_msgs/msg/JointState",
            CMD: "trajectory_msgs/msg/JointTrajectory",
        }
        assert {t: c.msgcount for t, c in conns.items()} == {IMG: N, JS: N, CMD: N}
        # the embedded definitions hash like the running distro's types
        assert {t: c.digest for t, c in conns.items()} == graph_hash
        assert conns[IMG].ext.offered_qos_profiles[0].reliability == QosReliability.BEST_EFFORT
        assert conns[JS].ext.offered_qos_profiles[0].reliability == QosReliability.RELIABLE
        stamps: dict[str, list[int]] = {t: [] for t in conns}
        for conn, t, raw in reader.messages():
            k = len(stamps[conn.topic])
            stamps[conn.topic].append(t)
            msg = TS.deserialize_cdr(raw, conn.msgtype)
            assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == (
                100 * 10**9 + k * 100_000_000
            )
            if conn.topic == IMG:
                assert msg.encoding == "rgb8"
                np.testing.assert_array_equal(msg.data.reshape(128, 128, 3), pixels(k))
            elif conn.topic == JS:
                np.testing.assert_allclose(msg.position, joints(k))
    for topic, ts in stamps.items():
        assert len(ts) == N and np.all(np.diff(ts) > 0), topic  # receive time, in order
        assert t_start <= ts[0] and ts[-1] <= t_end, topic

    # wm import-bag trains on it: a step per frame, actions from the commands
    res = import_bag(bag, tmp_path / "shards")
    assert res["frames"] == N and res["dropped_frames"] == 0 and res["steps"] == N - 1
    assert res["action_source"] == "command" and res["shards"] == 1
    ep = load_shard(tmp_path / "shards" / "rec_0000.npz")
    assert ep.obs["image"].shape == (N, 128, 128, 3) and ep.action.shape == (N - 1, 4)
    np.testing.assert_array_equal(ep.obs["image"][3], pixels(3))
    np.testing.assert_allclose(ep.obs["joint_pos"][5], joints(5), atol=1e-6)
    assert np.abs(ep.action[:, :3]).max() > 0.1  # the commands ask the tool to move


def test_discovers_other_topics_and_matches_their_qos(ros, tmp_path):
    """A topic outside the stack is subscribed with the graph's type; a best-effort publisher
    gets a best-effort subscription, a latched one a transient-local one (its sample from
    before the recorder started is recorded)."""
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    status = ros.publisher(String, "/extra/status", latched)
    status.publish(String(data="ready"))
    level = ros.publisher(Float32, "/extra/level", SENSOR_QOS)
    rec = ros.add(
        BagRecorder(
            RecorderConfig(
                tmp_path / "rec",
                topics=("/extra/status", "/extra/level", "/extra/nobody"),
                discovery_period_s=0.1,
            ),
            context=ros.context,
        )
    )
    assert ros.spin_until(lambda: rec.stats["/extra/status"].received == 1 and ros.linked())
    for k in range(5):
        level.publish(Float32(data=float(k)))
        assert ros.spin_until(lambda k=k: rec.stats["/extra/level"].received == k + 1, 5.0)
    summary = rec.close()
    st = summary.topics
    assert (st["/extra/status"].msgtype, st["/extra/status"].best_effort) == (
        "std_msgs/msg/String",
        False,
    )
    assert (st["/extra/level"].msgtype, st["/extra/level"].best_effort) == (
        "std_msgs/msg/Float32",
        True,
    )
    assert st["/extra/level"].written == 5 and st["/extra/status"].written == 1
    assert st["/extra/nobody"].msgtype is None  # never in the graph: reported, not recorded
    with Reader(tmp_path / "rec") as reader:
        conns = {c.topic: c for c in reader.connections}
        assert set(conns) == {"/extra/status", "/extra/level"}
        offered = conns["/extra/status"].ext.offered_qos_profiles[0]
        assert offered.durability == QosDurability.TRANSIENT_LOCAL
        values = [
            TS.deserialize_cdr(raw, c.msgtype).data
            for c, _, raw in reader.messages(connections=[conns["/extra/level"]])
        ]
        assert values == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_record_stops_after_seconds_and_closes_the_bag(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(ros_harness.fresh_domain(DOMAIN)))
    out = tmp_path / "empty"
    out.mkdir()  # an existing empty directory is accepted
    t0 = time.monotonic()
    summary = record(RecorderConfig(out, topics=(JS,), seconds=0.5), handle_signals=False)
    assert summary.duration_s >= 0.5 and time.monotonic() - t0 < 10.0
    assert summary.ok and summary.topics[JS].written == 0
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap" and meta["message_count"] == 0
    with Reader(out) as reader:
        assert reader.message_count == 0


def test_wm_record_cli_closes_the_bag_on_ctrl_c(ros, tmp_path):
    bag = tmp_path / "cli"
    env = dict(os.environ)  # with the fixture's fresh ROS_DOMAIN_ID
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ros_harness.ROOT), *map(str, sorted(ros_harness.SRC.glob("wm_*")))]
    )
    cmd = [sys.executable, "-m", "wm_core.cli", "record", "--out", str(bag), "--topics", JS]
    proc = subprocess.Popen(
        [*cmd, "/wm/surprise"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        pub = ros.publisher(JointState, JS, RELIABLE_QOS)
        assert ros.spin_until(ros.linked, 30.0), "the recorder never subscribed"
        for k in range(5):
            pub.publish(JointState(header=header(k, "base"), name=list(NAMES), position=[0.0] * 6))
        # reliable delivery to the other process (acknowledged by its reader; the recorder
        # writes what was delivered before it stops)
        assert pub.wait_for_all_acked(Duration(seconds=10.0))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "recorded 5 messages" in out
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["message_count"] == 5 and meta["storage_identifier"] == "mcap"
    report = json.loads((bag / "record.json").read_text())
    assert report["ok"] and report["topics"][JS]["written"] == 5
    assert report["topics"]["/wm/surprise"] == {
        "type": "std_msgs/msg/Float32",
        "qos": "reliable",
        "received": 0,
        "written": 0,
        "missed": 0,
        "note": "",
    }


def test_wm_record_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (["--out", str(old)], "already holds a rosbag2 bag"),
        (["--out", str(other)], "exists and is not empty"),
        (["--out", str(afile / "bag")], "is not a directory"),
        (["--out", str(afile)], "exists and is not a directory"),
        (["--out", str(tmp_path / "b"), "--seconds", "0"], "--seconds 0.0 must be a positive"),
        (["--out", str(tmp_path / "b"), "--seconds", "nan"], "--seconds nan must be a positive"),
        (["--out", str(tmp_path / "b"), "--topics", "camera"], "must be an absolute name"),
        (["--out", str(tmp_path / "b"), "--topics", JS, JS], "given more than once"),
    ]
    for args, why in cases:
        assert wm_main(["record", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("wm record: error: ") and why in err, (args, err)
        assert err.count("\n") == 1, err
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in old.iterdir()) == ["metadata.yaml"]  # left untouched
