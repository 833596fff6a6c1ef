"""``ros2 launch PACKAGE FILE [NAME:=VALUE ...]`` without ros2cli (not on PyPI).

Runs what the ``ros2 launch`` verb runs after parsing its command line: ``ros2launch.api``'s
``get_share_file_path_from_package`` (the ament index: the launch file installed in the
package's share directory) and ``launch_a_launch_file`` (a ``launch.LaunchService`` that
includes the file with the given arguments). It needs the ``launch``, ``launch_ros`` and
``ros2launch`` packages importable (``scripts/launch_check.sh`` sets that up from checked-out
ros2/launch and ros2/launch_ros sources) and the colcon install's environment (AMENT_PREFIX_PATH,
PYTHONPATH). Exit status: the launch service's (0 after a clean Ctrl-C/SIGINT shutdown).

    python scripts/ros2_launch.py wm_bringup real.launch.py shadow:=true
    python scripts/ros2_launch.py --show-args wm_bringup real.launch.py
"""

from __future__ import annotations

import argparse
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_name")
    parser.add_argument("launch_file_name")
    parser.add_argument("launch_arguments", nargs="*", metavar="NAME:=VALUE")
    parser.add_argument("-s", "--show-args", action="store_true", help="print the arguments")
    args = parser.parse_args(argv)
    # A background job of a non-interactive shell starts with SIGINT ignored, and the launch
    # service only hears SIGINT through Python's handler: without this, Ctrl-C / kill -INT
    # would be lost and only SIGTERM (which orphans the nodes) would stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from ros2launch.api import (
        get_share_file_path_from_package,
        launch_a_launch_file,
        print_arguments_of_launch_file,
    )

    path = get_share_file_path_from_package(
        package_name=args.package_name, file_name=args.launch_file_name
    )
    if args.show_args:
        return print_arguments_of_launch_file(launch_file_path=path) or 0
    return launch_a_launch_file(
        launch_file_path=path,
        launch_file_arguments=list(args.launch_arguments),
        noninteractive=True,
    )


if __name__ == "__main__":
    sys.exit(main())
