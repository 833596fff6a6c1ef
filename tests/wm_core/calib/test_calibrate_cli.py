"""``wm calibrate intrinsics`` and ``wm calibrate handeye`` end to end through wm_core.cli.main."""

import logging

import cv2
import numpy as np
import pytest
import yaml

from wm_core.calib.boards import BoardSpec
from wm_core.calib.intrinsics import CameraIntrinsics
from wm_core.calib.io import write_camera_info, write_handeye_samples
from wm_core.calib.synthetic import (
    DEFAULT_K,
    DEFAULT_SIZE,
    board_image,
    board_views,
    handeye_problem,
    pose_error,
    render_view,
)
from wm_core.calib.transforms import T_from_xyz_quat
from wm_core.cli import main

CHESS = BoardSpec("chessboard", 9, 6, 0.03)
CHARUCO = BoardSpec("charuco", 8, 6, 0.035, 0.026)
CHESS_ARGS = ["--board", "chessboard", "--cols", "9", "--rows", "6", "--square", "0.03"]


def _render(directory, board, n, seed=0, blanks=()):
    directory.mkdir(parents=True, exist_ok=True)
    printed = board_image(board)
    for i, T in enumerate(
        board_views(board, DEFAULT_K, DEFAULT_SIZE, n, np.random.default_rng(seed))
    ):
        cv2.imwrite(
            str(directory / f"view{i:02d}.png"), render_view(printed, DEFAULT_K, T, DEFAULT_SIZE)
        )
    for name in blanks:  # no board in these
        cv2.imwrite(str(directory / name), np.full((480, 640), 90, np.uint8))
    return directory


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


def test_intrinsics_chessboard_end_to_end(tmp_path, capsys):
    images = _render(tmp_path / "imgs", CHESS, 10, blanks=["zz_blank.png"])
    (images / "notes.txt").write_text("not an image: ignored")
    out = tmp_path / "out" / "scene_cam.yaml"
    rc = main(["calibrate", "intrinsics", "--images", str(images), *CHESS_ARGS,
               "--camera-name", "scene_cam", "--out", str(out)])  # fmt: skip
    stdout = capsys.readouterr().out
    assert rc == 0
    data = yaml.safe_load(out.read_text())
    assert data["image_width"] == 640 and data["image_height"] == 480
    assert data["camera_name"] == "scene_cam" and data["distortion_model"] == "plumb_bob"
    assert data["camera_matrix"]["rows"] == 3 and data["camera_matrix"]["cols"] == 3
    assert data["distortion_coefficients"]["cols"] == 5
    assert data["projection_matrix"]["cols"] == 4
    K = np.array(data["camera_matrix"]["data"]).reshape(3, 3)
    # rendered (pinhole) images, 10 views: focal within 1 %, principal point within 6 px
    assert abs(K[0, 0] / DEFAULT_K[0, 0] - 1) < 0.01 and abs(K[1, 1] / DEFAULT_K[1, 1] - 1) < 0.01
    assert np.abs(K[:2, 2] - DEFAULT_K[:2, 2]).max() < 6
    assert "board found in 10/11 images" in stdout
    assert "RMS reprojection error" in stdout and "view09.png" in stdout
    assert "board not found in: zz_blank.png" in stdout


def test_intrinsics_charuco_end_to_end(tmp_path, capsys):
    images = _render(tmp_path / "imgs", CHARUCO, 8, seed=1)
    out = tmp_path / "cam.yaml"
    rc = main(["calibrate", "intrinsics", "--images", str(images), "--board", "charuco",
               "--cols", "8", "--rows", "6", "--square", "0.035", "--marker", "0.026",
               "--dictionary", "DICT_4X4_50", "--out", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    K = np.array(yaml.safe_load(out.read_text())["camera_matrix"]["data"]).reshape(3, 3)
    assert abs(K[0, 0] / DEFAULT_K[0, 0] - 1) < 0.01


def test_too_few_detectable_images_exit_2_naming_them(tmp_path, capsys):
    images = _render(tmp_path / "imgs", CHESS, 3, blanks=["blank_a.png", "blank_b.jpg"])
    out = tmp_path / "cam.yaml"
    rc = main(["calibrate", "intrinsics", "--images", str(images), *CHESS_ARGS, "--out", str(out)])
    assert rc == 2
    err = _err(capsys)
    assert err.startswith("wm calibrate: error: the board was found in 3 image(s)")
    assert "need at least 5; not found in: blank_a.png, blank_b.jpg" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "setup, extra, needle",
    [
        (lambda d: None, [], "is not a directory"),  # --images does not exist
        (lambda d: d.mkdir(), [], "no images"),
        (
            lambda d: (d.mkdir(), (d / "broken.png").write_bytes(b"not a png")),
            [],
            "cannot read image",
        ),  # fmt: skip
        (lambda d: d.mkdir(), ["--board", "charuco"], "--marker METRES"),
        (lambda d: d.mkdir(), ["--cols", "2"], "cols (inner corners)=2"),
    ],
)
def test_intrinsics_bad_input_exit_2(tmp_path, capsys, setup, extra, needle):
    d = tmp_path / "imgs"
    setup(d)
    args = ["calibrate", "intrinsics", "--images", str(d), *CHESS_ARGS, *extra]
    rc = main([*args, "--out", str(tmp_path / "c.yaml")])
    assert rc == 2
    err = _err(capsys)
    assert err.startswith("wm calibrate: error:") and needle in err


def test_bad_choice_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", "handeye", "--samples", "s.yaml", "--mode", "eye-on-hand", "--out", "o"])
    assert exc.value.code == 2


def _handeye_files(tmp_path, problem, n_keep=None):
    write_camera_info(
        tmp_path / "cam.yaml", CameraIntrinsics("scene_cam", 640, 480, DEFAULT_K, np.zeros(5))
    )
    sl = slice(None, n_keep)
    return write_handeye_samples(
        tmp_path / "samples.yaml", problem.T_base_tool[sl], problem.T_cam_board[sl], "cam.yaml"
    )


def test_handeye_eye_to_hand_all_methods(tmp_path, capsys):
    p = handeye_problem(15, 0, noise_mm=0.5, noise_deg=0.05)
    samples = _handeye_files(tmp_path, p)
    out = tmp_path / "cell" / "camera_pose.yaml"
    rc = main(["calibrate", "handeye", "--samples", str(samples), "--mode", "eye-to-hand",
               "--method", "all", "--out", str(out)])  # fmt: skip
    stdout = capsys.readouterr().out
    assert rc == 0
    for m in ("tsai", "park", "horaud", "andreff", "daniilidis", "<- best"):
        assert m in stdout
    assert "warning" not in stdout
    d = yaml.safe_load(out.read_text())
    assert list(d) == ["camera", "static_transform", "handeye"]
    T = np.array(d["camera"]["T_world_cam"])
    dt, dr = pose_error(T, p.X)
    assert dt < 2.0 and dr < 0.2
    st = d["static_transform"]
    assert st["parent_frame"] == "world" and st["child_frame"] == "camera_optical_frame"
    assert np.allclose(T_from_xyz_quat(st["xyz"], st["quat_xyzw"]), T, atol=1e-9)
    he = d["handeye"]
    assert he["mode"] == "eye-to-hand" and he["samples"] == 15
    assert he["method"] in ("tsai", "park", "horaud", "andreff", "daniilidis")
    assert 0 < he["residual_translation_mm"] < 2 and 0 < he["residual_rotation_deg"] < 0.2


def test_handeye_eye_in_hand_single_method(tmp_path, capsys):
    p = handeye_problem(12, 3, mode="eye-in-hand")
    samples = _handeye_files(tmp_path, p)
    out = tmp_path / "pose.yaml"
    rc = main(["calibrate", "handeye", "--samples", str(samples), "--mode", "eye-in-hand",
               "--method", "park", "--out", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    d = yaml.safe_load(out.read_text())
    assert list(d["camera"]) == ["T_tool_cam"]
    assert d["static_transform"]["parent_frame"] == "tool0"
    assert d["handeye"]["method"] == "park"
    assert pose_error(np.array(d["camera"]["T_tool_cam"]), p.X)[0] < 2.0


def test_handeye_too_few_poses_exit_2(tmp_path, capsys):
    samples = _handeye_files(tmp_path, handeye_problem(15, 0), n_keep=2)
    rc = main(["calibrate", "handeye", "--samples", str(samples), "--mode", "eye-to-hand",
               "--out", str(tmp_path / "o.yaml")])  # fmt: skip
    assert rc == 2
    err = _err(capsys)
    assert "too few poses (2); hand-eye needs at least 3" in err and "samples.yaml" in err
    assert not (tmp_path / "o.yaml").exists()


def test_handeye_degenerate_motion_warns_and_prints(tmp_path, capsys, caplog):
    samples = _handeye_files(tmp_path, handeye_problem(12, 0, rotation="one-axis"))
    with caplog.at_level(logging.WARNING):
        rc = main(["calibrate", "handeye", "--samples", str(samples), "--mode", "eye-to-hand",
                   "--out", str(tmp_path / "o.yaml")])  # fmt: skip
    assert rc == 0
    assert "warning: near-parallel rotation axes" in capsys.readouterr().out
    assert "near-parallel rotation axes" in caplog.text


def test_handeye_missing_camera_info_exit_2(tmp_path, capsys):
    samples = _handeye_files(tmp_path, handeye_problem(6, 0))
    (tmp_path / "cam.yaml").unlink()
    rc = main(["calibrate", "handeye", "--samples", str(samples), "--mode", "eye-to-hand",
               "--out", str(tmp_path / "o.yaml")])  # fmt: skip
    assert rc == 2
    assert "cannot read camera_info" in _err(capsys)
