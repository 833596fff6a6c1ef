#!/usr/bin/env bash
# Runs tests/ros_ws/test_ros2_launch.py (sim.launch.py and real.launch.py, every launch argument,
# under the real ROS 2 launch system) with checked-out ros2/launch and ros2/launch_ros sources.
#
#   scripts/launch_check.sh LAUNCH_SRC LAUNCH_ROS_SRC [pytest args...]
#   LAUNCH_SRC=... LAUNCH_ROS_SRC=... scripts/launch_check.sh [-- pytest args...]
#   make launch-check LAUNCH_SRC=... LAUNCH_ROS_SRC=...
#
# LAUNCH_SRC is a checkout of ros2/launch (it holds launch/launch/__init__.py), LAUNCH_ROS_SRC
# one of ros2/launch_ros (launch_ros/launch_ros/, ros2launch/ros2launch/). Nothing is fetched
# from them: they are put on PYTHONPATH beside the colcon install (ros_ws/install, built by
# scripts/bootstrap.sh). Their other dependencies: lifecycle_msgs is in .venv (rclpy's);
# osrf-pycommon and lark are pip-installed into LAUNCH_DEPS (default .venv/launch-deps, not the
# project's pins) when missing; composition_interfaces (not on PyPI, imported by launch_ros for
# composable nodes, which the stack does not use) is a stand-in written into LAUNCH_DEPS.
# The test uses ROS_DOMAIN_ID 230-232.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [[ $# -ge 2 && "$1" != "--" && "$2" != "--" ]]; then
  LAUNCH_SRC=$1 LAUNCH_ROS_SRC=$2
  shift 2
fi
[[ "${1:-}" == "--" ]] && shift
: "${LAUNCH_SRC:?usage: scripts/launch_check.sh LAUNCH_SRC LAUNCH_ROS_SRC [pytest args]}"
: "${LAUNCH_ROS_SRC:?usage: scripts/launch_check.sh LAUNCH_SRC LAUNCH_ROS_SRC [pytest args]}"
LAUNCH_SRC=$(cd "$LAUNCH_SRC" && pwd)
LAUNCH_ROS_SRC=$(cd "$LAUNCH_ROS_SRC" && pwd)
for f in "$LAUNCH_SRC/launch/launch/__init__.py" "$LAUNCH_ROS_SRC/launch_ros/launch_ros/__init__.py" \
         "$LAUNCH_ROS_SRC/ros2launch/ros2launch/__init__.py"; do
  [[ -f "$f" ]] || { echo "launch_check: $f is missing: is that a ros2/launch(_ros) checkout?" >&2; exit 2; }
done

bash scripts/bootstrap.sh  # .venv and the colcon install of this checkout
PY="$ROOT/.venv/bin/python"
DEPS=${LAUNCH_DEPS:-$ROOT/.venv/launch-deps}
mkdir -p "$DEPS"
if ! PYTHONPATH="$DEPS" "$PY" -c 'import osrf_pycommon, lark' 2>/dev/null; then
  echo "launch_check: installing osrf-pycommon and lark into $DEPS"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$DEPS" \
    osrf-pycommon==2.0.2 lark==1.3.1 2>&1 | sed '/is ignored: it is neither a file nor a directory/d'
fi
if ! "$PY" -c 'import composition_interfaces' 2>/dev/null; then
  mkdir -p "$DEPS/composition_interfaces"
  echo '"""Stand-in (not on PyPI): launch_ros imports it for composable nodes only."""' \
    > "$DEPS/composition_interfaces/__init__.py"
  cat > "$DEPS/composition_interfaces/srv.py" <<'EOF'
"""Stand-in service types: they satisfy launch_ros's imports; using one raises."""


class _Unavailable:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("composition_interfaces stand-in: composable nodes are unavailable")


class _Service:
    Request = Response = _Unavailable


class LoadNode(_Service):
    pass


class UnloadNode(_Service):
    pass


class ListNodes(_Service):
    pass
EOF
fi

describe() {  # the checkout's commit (and tag), else its package.xml version
  if [[ "$(git -C "$1" rev-parse --show-toplevel 2>/dev/null)" == "$1" ]]; then
    echo "$(git -C "$1" rev-parse HEAD) ($(git -C "$1" describe --tags --always --dirty))"
  else
    sed -n 's:.*<version>\(.*\)</version>.*:version \1 (not a git checkout):p' "$1/$2/package.xml"
  fi
}
echo "launch_check: ros2/launch $(describe "$LAUNCH_SRC" launch)"
echo "launch_check: ros2/launch_ros $(describe "$LAUNCH_ROS_SRC" launch_ros)"

# the colcon install's environment (AMENT_PREFIX_PATH, PYTHONPATH), then the launch packages
set +u
# shellcheck disable=SC1091
source ros_ws/install/setup.bash
set -u
export PYTHONPATH="$LAUNCH_SRC/launch:$LAUNCH_ROS_SRC/launch_ros:$LAUNCH_ROS_SRC/ros2launch:$DEPS:${PYTHONPATH:-}"
export MUJOCO_GL=${MUJOCO_GL:-egl} LP_NUM_THREADS=${LP_NUM_THREADS:-0}
"$PY" -c 'import launch, launch_ros, ros2launch; print("launch_check: launch from", launch.__file__)'
exec "$PY" -m pytest -p no:cacheprovider tests/ros_ws/test_ros2_launch.py "$@"
