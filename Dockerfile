# The wm stack on ROS 2 Jazzy with Gazebo Harmonic (x86_64), or on a Jetson (VARIANT=jetson).
#
#   docker build -t wm:jazzy .
#   docker run --rm -it --gpus all -v wm-engines:/var/cache/wm/engines wm:jazzy
#       (default command: ros2 launch wm_bringup sim.launch.py sim:=gazebo)
#   docker build -t wm:jetson --build-arg VARIANT=jetson .
#   docker run --rm -it --runtime nvidia --network host -v wm-engines:/var/cache/wm/engines wm:jetson
#
# README, "Docker", has the details: what each variant installs, the engine-cache volume, GPU
# flags, and what was and was not checked (no Docker engine on the development machines: this
# file is linted by hadolint in the tests and read, not built there).
#
# Python. Jazzy is Python 3.12 (Ubuntu 24.04); requirements.txt pins the development machines'
# Python 3.11. The image makes a venv on the image's own python3 with --system-site-packages
# (apt's Python packages stay importable, rclpy and the messages come from /opt/ros/jazzy; no
# ros-* wheel is installed) and installs docker/requirements-jazzy.txt: the same versions,
# each checked to have a cp312 wheel.

ARG VARIANT=desktop
ARG ROS_IMAGE=ros:jazzy-ros-base
ARG JETSON_IMAGE=dustynv/ros:jazzy-ros-base-l4t-r36.4.0

# ---------------------------------------------------------------- x86_64: Jazzy + Gazebo
FROM ${ROS_IMAGE} AS base-desktop
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Gazebo Harmonic comes with ros-jazzy-ros-gz (its gz vendor packages); gz_ros2_control and the
# ros2_controllers drive the arm; robot_state_publisher, rviz2 and foxglove_bridge show it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3-venv \
        python3-pip \
        ros-jazzy-ros-gz \
        ros-jazzy-gz-ros2-control \
        ros-jazzy-ros2-control \
        ros-jazzy-ros2-controllers \
        ros-jazzy-robot-state-publisher \
        ros-jazzy-tf2-ros \
        ros-jazzy-rviz2 \
        ros-jazzy-foxglove-bridge \
        libegl1 \
        libgl1-mesa-dri \
    && rm -rf /var/lib/apt/lists/*
ENV ROS_SETUP=/opt/ros/jazzy/setup.bash \
    WM_BACKEND=torch

# ---------------------------------------------------------------- Jetson: JetPack, TensorRT
# The base provides ROS 2 Jazzy (built from source), CUDA and TensorRT. There is no Gazebo here:
# a Jetson runs the stack on the real arm (real.launch.py) or beside a simulator elsewhere.
FROM ${JETSON_IMAGE} AS base-jetson
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
ENV ROS_SETUP=/opt/ros/jazzy/install/setup.bash \
    WM_BACKEND=tensorrt

# ---------------------------------------------------------------- the stack (both variants)
# hadolint ignore=DL3006
FROM base-${VARIANT} AS wm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Extra wheel index for torch, e.g. NVIDIA's Jetson wheels (README, "Docker"); empty: PyPI.
ARG TORCH_INDEX_URL=""
ENV WM_HOME=/opt/wm \
    WM_VENV=/opt/venv \
    WM_ENGINE_CACHE=/var/cache/wm/engines \
    MUJOCO_GL=egl \
    PYTHONUNBUFFERED=1
WORKDIR /opt/wm

# The project's Python needs >= 3.11 (numpy 2.4): refuse an older base with one line.
RUN python3 -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v >= (3, 11) else \
    f"python3 is {v[0]}.{v[1]}: the wm stack needs >= 3.11 (ROS 2 Jazzy on Ubuntu 24.04 is 3.12)")' \
    && python3 -m venv --system-site-packages "$WM_VENV"

# Dependencies first (a layer that survives source edits). torch: the base's, when its python
# imports one (a Jetson image with NVIDIA's CUDA build), else the pin (PyPI, or TORCH_INDEX_URL).
COPY docker/requirements-jazzy.txt docker/requirements-jazzy.txt
RUN if "$WM_VENV/bin/python" -c 'import torch' 2>/dev/null; then \
        grep -v '^torch==' docker/requirements-jazzy.txt > /tmp/requirements.txt; \
    else \
        cp docker/requirements-jazzy.txt /tmp/requirements.txt; \
    fi \
    && "$WM_VENV/bin/pip" install --no-cache-dir \
        ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . /opt/wm
# wm_core editable (it finds configs/ and models/ beside it), then the colcon build with the
# venv's colcon, so the nodes' console scripts run the venv's python. The venv's bin/ros2 runs
# the ROS 2 CLI on the venv's python too: `ros2 launch` imports wm_bringup.launch_builder,
# which needs wm_core and the venv's packages.
RUN "$WM_VENV/bin/pip" install --no-cache-dir --no-deps -e /opt/wm \
    && . "$ROS_SETUP" \
    && printf '#!/bin/sh\nexec "%s/bin/python" "%s" "$@"\n' "$WM_VENV" "$(command -v ros2)" \
        > "$WM_VENV/bin/ros2" \
    && chmod +x "$WM_VENV/bin/ros2" \
    && . "$WM_VENV/bin/activate" \
    && colcon --log-base /tmp/colcon-log build --base-paths ros_ws/src \
        --build-base /tmp/colcon-build \
        --install-base /opt/wm/ros_ws/install --event-handlers console_direct- \
    && rm -rf /tmp/colcon-log /tmp/colcon-build \
    && mkdir -p "$WM_ENGINE_CACHE"

# Fail the build, naming the problem, if the venv cannot use apt's ROS 2 (message round trip
# with numpy arrays), the installed launch files, the Gazebo generator or the chosen backend.
RUN . "$ROS_SETUP" \
    && . /opt/wm/ros_ws/install/setup.bash \
    && . "$WM_VENV/bin/activate" \
    && python docker/check_image.py --backend "$WM_BACKEND"

VOLUME ["/var/cache/wm/engines"]
ENTRYPOINT ["/opt/wm/docker/entrypoint.sh"]

# ---------------------------------------------------------------- default commands
FROM wm AS wm-desktop
CMD ["ros2", "launch", "wm_bringup", "sim.launch.py", "sim:=gazebo"]

FROM wm AS wm-jetson
CMD ["ros2", "launch", "wm_bringup", "real.launch.py"]

# hadolint ignore=DL3006
FROM wm-${VARIANT}
