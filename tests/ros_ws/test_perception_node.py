"""wm_perception: image -> 32FC1 latent with the source stamp; bad images are dropped."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

DOMAIN = 120  # this module uses 120..129

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from wm_bringup.nodekit import SENSOR_QOS, StartupError  # noqa: E402
from wm_perception.perception_node import PerceptionNode  # noqa: E402


@pytest.fixture
def ros():
    from ros_harness import Ros, fresh_domain

    r = Ros(fresh_domain(DOMAIN))
    yield r
    r.close()


def image(h: int, w: int, encoding: str = "rgb8", seed: int = 0) -> Image:
    px = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    msg = Image(height=h, width=w, encoding=encoding, step=3 * w, data=px.tobytes())
    msg.header.frame_id = "cam"
    return msg


def start(ros, model_dir, *params: str) -> PerceptionNode:
    args = ["--ros-args", "-p", f"model_dir:={model_dir}", *[a for p in params for a in ("-p", p)]]
    node = ros.add(PerceptionNode(context=ros.context, cli_args=args))
    node.autostart()
    return node


def test_latent_has_the_source_stamp_shape_and_sensor_qos(ros, tiny_model_dir):
    node = start(ros, tiny_model_dir)
    latents = ros.collect(Image, "/wm/latent", SENSOR_QOS)
    pub = ros.publisher(Image, "/camera/image_raw", SENSOR_QOS)
    assert ros.spin_until(lambda: ros.linked())
    info = ros.probe.get_publishers_info_by_topic("/wm/latent")
    assert info[0].qos_profile.reliability.name == "BEST_EFFORT"
    assert node.pub.qos_profile.depth == 1  # (depth is not shared by discovery)

    msg = image(64, 64)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1234, 5678
    assert ros.spin_until(lambda: (pub.publish(msg), bool(latents))[1], timeout=10.0)
    z = latents[-1]
    assert (z.header.stamp.sec, z.header.stamp.nanosec) == (1234, 5678)
    assert z.header.frame_id == "cam"
    assert (z.encoding, z.height, z.width, z.step) == ("32FC1", 16, 8, 32)
    arr = np.frombuffer(z.data, "<f4").reshape(16, 8)  # [N, D]
    torch = pytest.importorskip("torch")
    px = np.frombuffer(msg.data, np.uint8).reshape(64, 64, 3)
    x = torch.from_numpy(px.copy()).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        want = node.backend.encode(x)[0].numpy()
    np.testing.assert_allclose(arr, want, atol=1e-5)


def test_bad_images_are_dropped_and_other_sizes_resized(ros, tiny_model_dir):
    node = start(ros, tiny_model_dir)
    latents = ros.collect(Image, "/wm/latent", SENSOR_QOS)
    pub = ros.publisher(Image, "/camera/image_raw", SENSOR_QOS)
    assert ros.spin_until(lambda: ros.linked())
    mono = image(64, 64)
    mono.encoding = "mono8"
    short = image(64, 64)
    short.data = bytes(short.data)[:100]
    blank = Image(height=64, width=64, encoding="rgb8", step=192, data=bytes(64 * 64 * 3))
    for k, bad in enumerate((mono, short, blank)):  # best effort, keep 1: one at a time
        pub.publish(bad)
        assert ros.spin_until(lambda n=k + 1: node.stats["rejected"] == n)
    assert latents == []
    big = image(96, 128, "bgr8")  # another size and channel order: resized, still encoded
    assert ros.spin_until(lambda: (pub.publish(big), bool(latents))[1], timeout=10.0)
    assert node.stats["resized"] >= 1 and latents[-1].height == 16


def test_onnxruntime_backend_runs_the_export_and_refuses_without_one(ros, tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from wm_core.deploy.onnx_export import export_onnx

    node = ros.add(
        PerceptionNode(
            context=ros.context,
            cli_args=["--ros-args", "-p", "backend:=onnxruntime", "-p", f"model_dir:={tmp_path}"],
        )
    )
    with pytest.raises(StartupError, match="does not exist"):
        node.autostart()  # no checkpoint, no export: refused, never a silent torch fallback
    assert node.state_label == "unconfigured"
    export_onnx(tiny_model_dir / "model.pt", tmp_path / "onnx")
    node = start(ros, tiny_model_dir, "backend:=onnxruntime", f"onnx_dir:={tmp_path / 'onnx'}")
    assert node.backend_name == "onnxruntime"
    x = np.random.default_rng(1).random((1, 3, 64, 64), np.float32)
    torch = pytest.importorskip("torch")
    from wm_core.models.checkpoint import load_checkpoint

    want = load_checkpoint(tiny_model_dir / "model.pt").encode(torch.from_numpy(x))
    got = node.backend.encode(torch.from_numpy(x))
    assert float((got - want).abs().max()) <= 1e-4


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)
def test_tensorrt_backend_refuses_to_start_without_the_package(ros, tiny_model_dir):
    node = ros.add(
        PerceptionNode(
            context=ros.context,
            cli_args=[
                "--ros-args",
                "-p",
                "backend:=tensorrt",
                "-p",
                f"model_dir:={tiny_model_dir}",
            ],
        )
    )
    with pytest.raises(StartupError, match="TensorRT is not installed"):
        node.autostart()


def test_parameters_are_validated_and_the_model_freed_on_cleanup(ros, tiny_model_dir, tmp_path):
    with pytest.raises(StartupError, match="backend"):
        PerceptionNode(context=ros.context, cli_args=["--ros-args", "-p", "backend:=caffe"])
    missing = ros.add(
        PerceptionNode(context=ros.context, cli_args=["--ros-args", "-p", f"model_dir:={tmp_path}"])
    )
    with pytest.raises(StartupError, match="does not exist"):
        missing.autostart()
    node = start(ros, tiny_model_dir)
    assert not node.set_parameters([Parameter("threads", value=0)])[0].successful
    assert not node.set_parameters([Parameter("device", value="tpu")])[0].successful
    assert node.backend is not None
    node.stop()
    assert node.backend is None and node.state_label == "unconfigured"


def test_a_stage3_readout_map_goes_out_with_the_latent(ros, tiny_model_dir, tmp_path):
    """A model directory whose readout reads encoder stage 3: the message holds the latent's N
    rows, then the readout's raw map of the same image (what the planner decodes)."""
    import shutil

    torch = pytest.importorskip("torch")
    from wm_core.models.checkpoint import load_checkpoint
    from wm_core.models.readout import unpack_map
    from wm_core.train.readout import new_readout

    shutil.copy(tiny_model_dir / "model.pt", tmp_path / "model.pt")
    model = load_checkpoint(tmp_path / "model.pt")
    torch.manual_seed(1)
    ro = new_readout(model, 4, source="stage3").eval()
    torch.save(
        {"version": 1, "hidden": 4, "source": "stage3", "state": ro.state_dict()},
        tmp_path / "readout.pt",
    )
    node = start(ros, tmp_path)
    assert node.stage == 3
    latents = ros.collect(Image, "/wm/latent", SENSOR_QOS)
    pub = ros.publisher(Image, "/camera/image_raw", SENSOR_QOS)
    assert ros.spin_until(lambda: ros.linked())
    msg = image(64, 64, seed=3)
    assert ros.spin_until(lambda: (pub.publish(msg), bool(latents))[1], timeout=10.0)
    z = latents[-1]
    assert (z.height, z.width) == (16 + 32, 8)  # 4x4 latent + the 8x8 map's 4*64/8 rows
    rows = np.frombuffer(z.data, "<f4").reshape(z.height, z.width)
    lat, raw = unpack_map(rows, 16, 8)
    px = np.frombuffer(msg.data, np.uint8).reshape(64, 64, 3)
    x = torch.from_numpy(px.copy()).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        want_z, f = model.encode_tap(x, 3)
        want_raw = ro.raw(f)
    np.testing.assert_allclose(lat, want_z[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(raw, want_raw.numpy(), atol=1e-5)


def test_a_stage3_readout_refuses_a_backend_without_the_tap(ros, tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    import shutil

    torch = pytest.importorskip("torch")
    from wm_core.deploy.onnx_export import export_onnx
    from wm_core.models.checkpoint import load_checkpoint
    from wm_core.train.readout import new_readout

    shutil.copy(tiny_model_dir / "model.pt", tmp_path / "model.pt")
    ro = new_readout(load_checkpoint(tmp_path / "model.pt"), 0, source="stage3")
    torch.save(
        {"version": 1, "hidden": 0, "source": "stage3", "state": ro.state_dict()},
        tmp_path / "readout.pt",
    )
    export_onnx(tmp_path / "model.pt", tmp_path / "onnx")
    args = [
        "--ros-args",
        "-p",
        f"model_dir:={tmp_path}",
        "-p",
        "backend:=onnxruntime",
        "-p",
        f"onnx_dir:={tmp_path / 'onnx'}",
    ]
    node = ros.add(PerceptionNode(context=ros.context, cli_args=args))
    with pytest.raises(StartupError, match="reads encoder stage 3; the onnxruntime backend"):
        node.autostart()
