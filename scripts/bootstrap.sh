#!/usr/bin/env bash
# Idempotent setup of the project virtual environment (.venv) and the colcon workspace.
# First run: creates .venv with Python 3.11, installs the pinned requirements, the wm_core
# package (editable, `wm` command) and builds ros_ws with colcon. Later runs compare a hash of
# the inputs with .venv/.bootstrap-stamp and return at once when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.bootstrap-stamp"

inputs_hash() {
  { cat requirements.txt pyproject.toml scripts/bootstrap.sh
    find ros_ws/src -type f -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -d' ' -f1
}
HASH=$(inputs_hash)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -x "$VENV/bin/wm" ]]; then
  exit 0
fi

PY=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && \
     "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
    PY=$cand; break
  fi
done
if [[ -z "$PY" ]]; then
  echo "bootstrap: Python 3.11 is required (python3.11 or python3 must be 3.11)" >&2
  exit 1
fi

echo "bootstrap: setting up $VENV (first run or changed inputs)..."
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
pip_install() {
  # Some machines list local package mirrors that do not exist; pip warns once per package.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | sed '/is ignored: it is neither a file nor a directory/d'
}
pip_install -r requirements.txt
pip_install --no-deps -e .
# The ros_ws packages (the runner `python -m wm_bringup`, the nodes) importable from the venv
# without sourcing a ROS install: one .pth line per package source folder.
printf '%s\n' "$ROOT"/ros_ws/src/wm_* \
  > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/wm_ros_ws.pth"

# colcon build of the ament_python packages, with the venv active so that colcon, ament and
# rclpy all come from the pinned wheels.
(
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  cd ros_ws
  colcon --log-base log build --base-paths src --build-base build --install-base install \
    --event-handlers console_cohesion- summary- console_stderr- >/dev/null
)
echo "$HASH" > "$STAMP"
echo "bootstrap: done"
