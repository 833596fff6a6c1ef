"""camera_info, hand-eye samples and hand-eye result YAML."""

import numpy as np
import pytest
import yaml

from wm_core.calib.handeye import calibrate_handeye
from wm_core.calib.intrinsics import CameraIntrinsics
from wm_core.calib.io import (
    handeye_result_dict,
    read_camera_info,
    read_handeye_samples,
    write_camera_info,
    write_handeye_samples,
)
from wm_core.calib.synthetic import DEFAULT_D, DEFAULT_K, handeye_problem
from wm_core.calib.transforms import T_from_xyz_quat
from wm_core.config import ConfigError

CAM = CameraIntrinsics("scene_cam", 640, 480, DEFAULT_K, DEFAULT_D)


def test_camera_info_round_trip_and_ros_layout(tmp_path):
    path = write_camera_info(tmp_path / "cam.yaml", CAM)
    data = yaml.safe_load(path.read_text())
    assert list(data) == [
        "image_width",
        "image_height",
        "camera_name",
        "camera_matrix",
        "distortion_model",
        "distortion_coefficients",
        "rectification_matrix",
        "projection_matrix",
    ]
    assert data["camera_matrix"]["rows"] == 3 and len(data["camera_matrix"]["data"]) == 9
    assert data["distortion_coefficients"] == {"rows": 1, "cols": 5, "data": DEFAULT_D.tolist()}
    assert data["rectification_matrix"]["data"] == np.eye(3).reshape(-1).tolist()
    P = np.array(data["projection_matrix"]["data"]).reshape(3, 4)
    assert np.allclose(P[:, 3], 0) and P[2, 2] == 1 and P[0, 0] > 0
    back = read_camera_info(path)
    assert back.name == "scene_cam" and back.size == (640, 480)
    assert np.array_equal(back.K, DEFAULT_K) and np.array_equal(back.D, DEFAULT_D)


def _good() -> dict:
    return {
        "image_width": 640,
        "image_height": 480,
        "camera_name": "cam",
        "camera_matrix": {"rows": 3, "cols": 3, "data": [600, 0, 320, 0, 600, 240, 0, 0, 1]},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0, 0, 0, 0, 0]},
    }


def _set(path, value):
    def edit(d):
        *parents, leaf = path
        for p in parents:
            d = d[p]
        if value is KeyError:
            del d[leaf]
        else:
            d[leaf] = value

    return edit


@pytest.mark.parametrize(
    "edit, needle",
    [
        (_set(["camera_matrix"], KeyError), "missing field(s) ['camera_matrix']"),
        (_set(["image_width"], KeyError), "missing field(s) ['image_width']"),
        (_set(["camera_matrix", "data"], [600, 0, 320]), "camera_matrix.data has 3 values"),
        (_set(["distortion_coefficients", "cols"], 4), "distortion_coefficients.cols=4"),
        (_set(["distortion_coefficients", "data"], [0, 0, 0, 0]), "has 4 values, expected 5"),
        (_set(["camera_matrix", "data", 4], float("nan")), "camera_matrix.data[4]=nan"),
        (_set(["camera_matrix", "data", 2], "x"), "camera_matrix.data[2]='x' is not a finite"),
        (_set(["camera_matrix", "data", 0], -600), "focal lengths fx=-600, fy=600 must be > 0"),
        (_set(["camera_matrix", "data", 4], 0), "fy=0 must be > 0"),
        (_set(["image_height"], 0), "image_height=0 must be a positive integer"),
        (_set(["distortion_model"], "equidistant"), "only plumb_bob is supported"),
        (_set(["camera_matrix", "data", 6], 5), "camera_matrix: K="),
        (_set(["projection_matrix"], {"rows": 3, "cols": 4, "data": [1]}), "projection_matrix"),
    ],
)
def test_malformed_camera_info_is_a_one_line_error_naming_file_and_field(tmp_path, edit, needle):
    data = _good()
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        read_camera_info(path)
    msg = str(err.value)
    assert needle in msg and str(path) in msg and "\n" not in msg


@pytest.mark.parametrize(
    "text, needle",
    [
        ("camera_matrix: [1, 2\n  bad", "is not valid YAML"),
        ("- just\n- a list\n", "expected a mapping, got list"),
        ("", "expected a mapping, got NoneType"),
    ],
)
def test_camera_info_bad_yaml(tmp_path, text, needle):
    path = tmp_path / "cam.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        read_camera_info(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_camera_info_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read camera_info .*nope.yaml"):
        read_camera_info(tmp_path / "nope.yaml")


def test_samples_round_trip(tmp_path):
    p = handeye_problem(6, 0)
    path = write_handeye_samples(tmp_path / "s.yaml", p.T_base_tool, p.T_cam_board, "cam.yaml")
    s = read_handeye_samples(path)
    assert len(s) == 6 and s.camera_info == "cam.yaml" and s.tool_frame == "tool0"
    assert np.allclose(s.T_base_tool, p.T_base_tool, atol=1e-12)
    assert np.allclose(s.T_cam_board, p.T_cam_board, atol=1e-12)
    entry = yaml.safe_load(path.read_text())["samples"][0]
    assert set(entry["T_base_tool"]) == {"xyz", "quat_xyzw"}
    assert set(entry["T_cam_board"]) == {"rvec", "tvec"}


def _samples_file(tmp_path, edit=None, n=4):
    p = handeye_problem(n, 0)
    path = write_handeye_samples(tmp_path / "s.yaml", p.T_base_tool, p.T_cam_board, "cam.yaml")
    if edit is not None:
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "edit, needle",
    [
        (_set(["camera_info"], KeyError), "camera_info=None must name the camera_info YAML"),
        (_set(["samples", 1, "T_base_tool"], KeyError), "samples[1]: missing T_base_tool"),
        (_set(["samples", 2, "T_base_tool", "quat_xyzw"], [0, 0, 0, 2]), "samples[2].T_base"),
        (_set(["samples", 0, "T_cam_board", "tvec"], [0, 0]), "samples[0].T_cam_board.tvec="),
        (_set(["samples", 0, "T_cam_board", "tvec"], [0, 0, -1]), "in front of the camera"),
        (_set(["samples", 3, "T_cam_board", "rvec"], [0, "a", 0]), "samples[3].T_cam_board.rvec"),
        (_set(["samples", 0, "T_cam_board", "R"], 1), "unknown key(s) ['R']"),
        (_set(["samples", 0], [1, 2]), "samples[0] must be a mapping"),
        (_set(["extra"], 1), "unknown key(s) ['extra']"),
        (_set(["samples"], {"a": 1}), "samples must be a list"),
        (lambda d: d.update(samples=d["samples"][:2]), "too few poses (2)"),
    ],
)
def test_bad_samples_are_one_line_errors_naming_the_field(tmp_path, edit, needle):
    path = _samples_file(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        read_handeye_samples(path)
    msg = str(err.value)
    assert needle in msg and str(path) in msg and "\n" not in msg


def test_samples_quaternion_is_normalised_within_tolerance(tmp_path):
    def scale(d):
        q = d["samples"][0]["T_base_tool"]["quat_xyzw"]
        d["samples"][0]["T_base_tool"]["quat_xyzw"] = [1.005 * v for v in q]

    s = read_handeye_samples(_samples_file(tmp_path, scale))
    R = s.T_base_tool[0, :3, :3]
    assert np.allclose(R.T @ R, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("mode", ["eye-to-hand", "eye-in-hand"])
def test_result_schema(mode):
    from wm_core.calib.handeye import HandEyeSamples

    p = handeye_problem(10, 0, mode=mode)
    res = calibrate_handeye(HandEyeSamples(p.T_base_tool, p.T_cam_board), mode, ["tsai"])
    d = handeye_result_dict(res, tool_frame="flange")
    assert list(d) == ["camera", "static_transform", "handeye"]
    key = "T_world_cam" if mode == "eye-to-hand" else "T_tool_cam"
    assert list(d["camera"]) == [key]
    T = np.array(d["camera"][key])
    assert T.shape == (4, 4) and T[3].tolist() == [0.0, 0.0, 0.0, 1.0]
    st = d["static_transform"]
    assert list(st) == ["parent_frame", "child_frame", "xyz", "quat_xyzw"]
    assert st["parent_frame"] == ("world" if mode == "eye-to-hand" else "flange")
    assert st["child_frame"] == "camera_optical_frame"
    assert np.allclose(T_from_xyz_quat(st["xyz"], st["quat_xyzw"]), T, atol=1e-12)
    assert d["handeye"] == {
        "mode": mode,
        "method": "tsai",
        "samples": 10,
        "residual_translation_mm": res.best.residual_translation_mm,
        "residual_rotation_deg": res.best.residual_rotation_deg,
    }
