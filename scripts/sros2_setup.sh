#!/usr/bin/env bash
# SROS2 for the wm stack, on a full ROS 2 install (sros2's `ros2 security`, a Fast DDS or
# Cyclone DDS built with security, openssl). Not on the pip-installed ROS 2 of the dev machines:
# the PyPI Fast DDS has no security plugins (README, "DDS security";
# tests/ros_ws/test_dds_security.py says so when it skips).
#
#   scripts/sros2_setup.sh [KEYSTORE]        (default: $WM_KEYSTORE, else ~/wm_keystore)
#
# Creates (or reuses) the keystore, one enclave per node of the stack and for the two tools
# that talk to it, and signs permissions from the policy written beside the keystore
# (KEYSTORE/wm_policy.xml): each enclave may publish and subscribe only what its node does.
# Only /wm/wm_safety may publish the arm's command topic ($WM_ARM_TOPIC, default
# /arm_controller/joint_trajectory; the real profile's default is
# /scaled_joint_trajectory_controller/joint_trajectory). The enclave names must match
# wm_bringup.security.enclaves() (a test checks this file against it).
set -euo pipefail

KEYSTORE="${1:-${WM_KEYSTORE:-$HOME/wm_keystore}}"
ARM_TOPIC="${WM_ARM_TOPIC:-/arm_controller/joint_trajectory}"
SUCTION_TOPIC="${WM_SUCTION_TOPIC:-/suction/command}"
IMAGE_TOPIC="${WM_IMAGE_TOPIC:-/camera/image_raw}"
CAMERA_INFO_TOPIC="${WM_CAMERA_INFO_TOPIC:-/camera/camera_info}"

NODE_ENCLAVES=(/wm/wm_sim /wm/wm_pybullet /wm/wm_perception /wm/wm_planner /wm/wm_safety)
TOOL_ENCLAVES=(/wm/wm_episode_driver /wm/wm_operator)

die() { echo "sros2_setup: $*" >&2; exit 2; }
command -v ros2 >/dev/null || die "no ros2 command: source a full ROS 2 install first"
ros2 security --help >/dev/null 2>&1 || die "ros2 security (sros2) is not installed"
command -v openssl >/dev/null || die "sros2 needs openssl"

if [ -f "$KEYSTORE/public/ca.cert.pem" ]; then
  echo "keystore $KEYSTORE exists: reusing its CA"
else
  ros2 security create_keystore "$KEYSTORE"
fi

# The common part of every profile: parameters, lifecycle services, logging, diagnostics, time.
common() {
  cat <<'EOF'
          <topics publish="ALLOW" subscribe="ALLOW">
            <topic>/parameter_events</topic>
          </topics>
          <topics publish="ALLOW">
            <topic>/rosout</topic>
            <topic>/diagnostics</topic>
            <topic>~/transition_event</topic>
          </topics>
          <topics subscribe="ALLOW">
            <topic>/clock</topic>
          </topics>
          <services reply="ALLOW">
            <service>~/describe_parameters</service>
            <service>~/get_parameter_types</service>
            <service>~/get_parameters</service>
            <service>~/list_parameters</service>
            <service>~/set_parameters</service>
            <service>~/set_parameters_atomically</service>
            <service>~/get_type_description</service>
            <service>~/change_state</service>
            <service>~/get_state</service>
            <service>~/get_available_states</service>
            <service>~/get_available_transitions</service>
            <service>~/get_transition_graph</service>
          </services>
EOF
}

# profile ENCLAVE NODE PUBLISH SUBSCRIBE [EXTRA_XML]: topic lists are space-separated
profile() {
  local enclave=$1 node=$2 pub=$3 sub=$4 extra=${5:-}
  echo "    <enclave path=\"$enclave\">"
  echo "      <profiles>"
  echo "        <profile ns=\"/\" node=\"$node\">"
  common
  if [ -n "$pub" ]; then
    echo '          <topics publish="ALLOW">'
    for t in $pub; do echo "            <topic>$t</topic>"; done
    echo '          </topics>'
  fi
  if [ -n "$sub" ]; then
    echo '          <topics subscribe="ALLOW">'
    for t in $sub; do echo "            <topic>$t</topic>"; done
    echo '          </topics>'
  fi
  [ -z "$extra" ] || echo "$extra"
  echo "        </profile>"
  echo "      </profiles>"
  echo "    </enclave>"
}

POLICY="$KEYSTORE/wm_policy.xml"
{
  echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo '<!-- written by scripts/sros2_setup.sh: the wm stack, one enclave per node -->'
  echo '<policy version="0.2.0">'
  echo '  <enclaves>'
  profile /wm/wm_sim wm_sim \
    "/clock /joint_states /arm_controller/reference $IMAGE_TOPIC $CAMERA_INFO_TOPIC \
     /wm/sim/episode" \
    "$ARM_TOPIC $SUCTION_TOPIC /wm/sim/reset /wm/sim/end_episode"
  # the PyBullet world (real profile, sim:=pybullet): the same device topics as wm_sim
  profile /wm/wm_pybullet wm_pybullet \
    "/clock /joint_states /arm_controller/reference $IMAGE_TOPIC $CAMERA_INFO_TOPIC \
     /wm/sim/episode" \
    "$ARM_TOPIC $SUCTION_TOPIC /wm/sim/reset /wm/sim/end_episode"
  profile /wm/wm_perception wm_perception "/wm/latent" "$IMAGE_TOPIC"
  profile /wm/wm_planner wm_planner \
    "/wm/plan_cmd /wm/plan_markers /wm/surprise" \
    "/wm/latent /joint_states $ARM_TOPIC /wm/shadow/joint_trajectory $CAMERA_INFO_TOPIC"
  # the one enclave that may command the arm
  profile /wm/wm_safety wm_safety \
    "$ARM_TOPIC $SUCTION_TOPIC /wm/shadow/joint_trajectory /wm/safety/command_source" \
    "/joint_states /arm_controller/reference /wm/plan_cmd /wm/estop"
  # wm up --episodes / wm bench stack / wm soak: resets the world, cycles the planner, listens
  profile /wm/wm_episode_driver wm_episode_driver \
    "/wm/sim/reset /wm/sim/end_episode" \
    "/clock /wm/latent /wm/safety/command_source $ARM_TOPIC /wm/sim/episode /diagnostics \
     /rosout $IMAGE_TOPIC" \
    '          <services request="ALLOW">
            <service>/wm_planner/change_state</service>
            <service>/wm_planner/get_state</service>
          </services>'
  # an operator's console: the e-stop, and releasing it (a parameter of wm_safety)
  profile /wm/wm_operator wm_operator "/wm/estop" "/diagnostics /rosout" \
    '          <services request="ALLOW">
            <service>/wm_safety/set_parameters</service>
            <service>/wm_safety/get_parameters</service>
          </services>'
  echo '  </enclaves>'
  echo '</policy>'
} > "$POLICY"

for e in "${NODE_ENCLAVES[@]}" "${TOOL_ENCLAVES[@]}"; do
  ros2 security create_enclave "$KEYSTORE" "$e"
  ros2 security create_permission "$KEYSTORE" "$e" "$POLICY"
done

cat <<EOF
keystore ready: $KEYSTORE (policy $POLICY)
enclaves: ${NODE_ENCLAVES[*]} ${TOOL_ENCLAVES[*]}

Run every process of the stack with
  export ROS_SECURITY_KEYSTORE=$KEYSTORE
  export ROS_SECURITY_ENABLE=true
  export ROS_SECURITY_STRATEGY=Enforce
and each node with its enclave, e.g.
  ros2 run wm_safety safety_node --ros-args --enclave /wm/wm_safety -r __node:=wm_safety ...
The launch files take enclaves:=true (ros2 launch wm_bringup sim.launch.py enclaves:=true), as
does the runner (wm up sim enclaves:=true); a process without credentials cannot join.
EOF
