"""Print the synthetic accuracy figures quoted in calibration/README.md.

Run from the repository root:  python -m calibration.accuracy [--seeds 20]
Everything is seeded, so the output is the same on every run (same numpy / OpenCV).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's wm_core

from wm_core.calib.boards import BoardSpec, board_pose, detect_board  # noqa: E402
from wm_core.calib.handeye import METHODS, MODES, HandEyeSamples, calibrate_handeye  # noqa: E402
from wm_core.calib.intrinsics import calibrate  # noqa: E402
from wm_core.calib.synthetic import (  # noqa: E402
    DEFAULT_D,
    DEFAULT_K,
    DEFAULT_SIZE,
    board_image,
    board_views,
    handeye_problem,
    pose_error,
    project_views,
    render_view,
)

BOARDS = {
    "chessboard 9x6 inner, 30 mm": BoardSpec("chessboard", 9, 6, 0.03),
    "charuco 8x6, 35/26 mm": BoardSpec("charuco", 8, 6, 0.035, 0.026),
}


def _focal_err_pct(K: np.ndarray) -> float:
    return 100 * max(abs(K[0, 0] / DEFAULT_K[0, 0] - 1), abs(K[1, 1] / DEFAULT_K[1, 1] - 1))


def intrinsics_projected(seeds: int) -> None:
    print(f"## Intrinsics, projected corners: 15 views, 0.2 px noise per axis, {seeds} seeds")
    print("K: fx 605, fy 600, cx 322, cy 238 (640x480); D: -0.12, 0.08, 0.0008, -0.0005, 0\n")
    print("| board | focal error median / max | principal point error max | RMS min-max |")
    print("|---|---|---|---|")
    for name, board in BOARDS.items():
        f, c, rms = [], [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            poses = board_views(board, DEFAULT_K, DEFAULT_SIZE, 15, rng)
            res = calibrate(
                project_views(board, DEFAULT_K, DEFAULT_D, poses, 0.2, rng), DEFAULT_SIZE
            )
            K = res.intrinsics.K
            f.append(_focal_err_pct(K))
            c.append(np.abs(K[:2, 2] - DEFAULT_K[:2, 2]).max())
            rms.append(res.rms)
        print(
            f"| {name} | {np.median(f):.3f} % / {max(f):.3f} % | {max(c):.2f} px "
            f"| {min(rms):.3f}-{max(rms):.3f} px |"
        )
    print()


def rendered(seeds: int) -> None:
    print(f"## Rendered pinhole images (no distortion, 10 views), {seeds} seeds\n")
    print("| board | focal error max | RMS max | board_pose error max (50 views) |")
    print("|---|---|---|---|")
    for name, board in BOARDS.items():
        printed = board_image(board)
        f, rms = [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            dets = [
                detect_board(render_view(printed, DEFAULT_K, T, DEFAULT_SIZE), board)
                for T in board_views(board, DEFAULT_K, DEFAULT_SIZE, 10, rng)
            ]
            res = calibrate([d for d in dets if d is not None], DEFAULT_SIZE)
            f.append(_focal_err_pct(res.intrinsics.K))
            rms.append(res.rms)
        errs = []
        for T in board_views(board, DEFAULT_K, DEFAULT_SIZE, 50, np.random.default_rng(99)):
            image = render_view(printed, DEFAULT_K, T, DEFAULT_SIZE)
            T_est, _ = board_pose(image, board, DEFAULT_K, np.zeros(5))
            errs.append(pose_error(T_est, T) if T_est is not None else (np.inf, np.inf))
        e = np.array(errs)
        print(
            f"| {name} | {max(f):.3f} % | {max(rms):.3f} px "
            f"| {e[:, 0].max():.2f} mm, {e[:, 1].max():.3f} deg |"
        )
    print()


def handeye(seeds: int) -> None:
    for noise_deg in (0.05, 0.1):
        print(
            f"## Hand-eye: 15 poses (+-30 deg per axis), board noise 0.5 mm and {noise_deg} deg "
            f"per axis, {seeds} seeds"
        )
        print("error of the solved camera pose vs truth: median / max\n")
        print("| mode | " + " | ".join(METHODS) + " | best (by residual) |")
        print("|---|" + "---|" * (len(METHODS) + 1))
        for mode in MODES:
            errs: dict[str, list] = {m: [] for m in (*METHODS, "best")}
            for seed in range(seeds):
                p = handeye_problem(15, seed, mode=mode, noise_mm=0.5, noise_deg=noise_deg)
                res = calibrate_handeye(HandEyeSamples(p.T_base_tool, p.T_cam_board), mode)
                for r in res.results:
                    errs[r.method].append(pose_error(r.X, p.X))
                errs["best"].append(pose_error(res.best.X, p.X))
            cells = []
            for m in (*METHODS, "best"):
                e = np.array(errs[m])
                med, mx = np.median(e, axis=0), e.max(axis=0)
                cells.append(f"{med[0]:.2f} / {mx[0]:.2f} mm, {med[1]:.3f} / {mx[1]:.3f} deg")
            print(f"| {mode} | " + " | ".join(cells) + " |")
        print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    intrinsics_projected(args.seeds)
    rendered(min(args.seeds, 5))
    handeye(args.seeds)


if __name__ == "__main__":
    main()
