"""Build-time check of the Docker image (the Dockerfile runs it; it fails the build with one line
naming the problem). Run with the venv's python after sourcing ROS and the workspace:

    python docker/check_image.py --backend torch|onnxruntime|tensorrt [--no-launch]

It checks that the venv's interpreter:
1. imports apt's rclpy and round-trips messages that carry numpy arrays (CameraInfo's ``k``,
   JointState) through serialization: the rosidl C extensions against the venv's numpy;
2. finds the installed wm_bringup and its launch files (ament index);
3. generates the Gazebo files from the shipped cell and builds the ``sim:=gazebo`` launch
   actions with the real ``launch`` / ``launch_ros`` (skipped with ``--no-launch``, as is the
   ``ros2`` CLI: the development machines have neither);
4. imports what the chosen perception backend needs (tensorrt: ``tensorrt`` and CUDA torch).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
from pathlib import Path


class CheckFailedError(Exception):
    pass


def check_messages() -> str:
    import numpy as np
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import CameraInfo, JointState

    info = CameraInfo()
    info.k = np.arange(9, dtype=float)
    back = deserialize_message(serialize_message(info), CameraInfo)
    if list(back.k) != list(range(9)):
        raise CheckFailedError(f"CameraInfo.k did not survive serialization: {list(back.k)}")
    js = JointState(name=["a"], position=[1.5])
    if list(deserialize_message(serialize_message(js), JointState).position) != [1.5]:
        raise CheckFailedError("JointState.position did not survive serialization")
    return f"rclpy messages ok with numpy {np.__version__}"


def check_installed(cli: bool) -> str:
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("wm_bringup"))
    launch = sorted(p.name for p in (share / "launch").glob("*.launch.py"))
    if launch != ["real.launch.py", "sim.launch.py"]:
        raise CheckFailedError(f"wm_bringup's installed launch files are {launch}")
    if cli and shutil.which("ros2") is None:
        raise CheckFailedError("no ros2 command on PATH")
    return f"wm_bringup installed at {share}"


def check_gazebo(launch: bool) -> str:
    from wm_bringup.launch_builder import gazebo_actions, gazebo_files
    from wm_bringup.stack import describe

    from wm_core.cell import sim_cell

    stack = describe("sim", sim="gazebo")
    with tempfile.TemporaryDirectory() as tmp:
        files = gazebo_files(stack, sim_cell(), Path(tmp))
        if not launch:
            return f"Gazebo files generated ({len(files.objects)} objects)"
        actions = gazebo_actions(stack, files, "-r -s --headless-rendering")
    kinds = sorted({type(a).__name__ for a in actions})
    return f"Gazebo files and {len(actions)} launch actions ({', '.join(kinds)})"


def check_backend(backend: str) -> str:
    if backend == "torch":
        import torch

        return f"torch {torch.__version__}"
    if backend == "onnxruntime":
        ort = importlib.import_module("onnxruntime")
        return f"onnxruntime {ort.__version__}"
    trt = importlib.import_module("tensorrt")
    import torch

    if not torch.backends.cuda.is_built():
        raise CheckFailedError(
            f"torch {torch.__version__} has no CUDA: the tensorrt backend needs it"
        )
    return f"tensorrt {trt.__version__}, torch {torch.__version__} (CUDA build)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="torch", choices=("torch", "onnxruntime", "tensorrt"))
    ap.add_argument(
        "--no-launch",
        action="store_true",
        help="skip what needs launch_ros and the ros2 CLI (a pip-installed ROS 2)",
    )
    args = ap.parse_args(argv)
    checks = [
        ("ROS 2 messages", check_messages),
        ("installed workspace", lambda: check_installed(not args.no_launch)),
        ("Gazebo", lambda: check_gazebo(not args.no_launch)),
        (f"backend {args.backend}", lambda: check_backend(args.backend)),
    ]
    for name, check in checks:
        try:
            print(f"check_image: {name}: {check()}")
        except (CheckFailedError, ImportError, OSError, LookupError, ValueError) as exc:
            print(f"check_image: {name} FAILED: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
