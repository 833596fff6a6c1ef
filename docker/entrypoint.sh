#!/usr/bin/env bash
# The image's entrypoint: ROS 2 (apt or the Jetson base's), the workspace, then the venv, whose
# bin/ros2 runs the ros2 CLI on the venv's python (so launch files import wm_core and its pins).
set -eo pipefail
# shellcheck disable=SC1090
source "${ROS_SETUP:?}"
# shellcheck disable=SC1091
source /opt/wm/ros_ws/install/setup.bash
# shellcheck disable=SC1091
source "${WM_VENV:?}/bin/activate"
exec "$@"
