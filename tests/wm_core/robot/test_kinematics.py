import mujoco
import numpy as np
import pytest

from wm_core.robot import ArmKinematics, load_arm
from wm_core.robot.urdf import parse_urdf
from wm_core.sim import SceneConfig
from wm_core.sim.scene import build_scene_xml, sample_objects


@pytest.fixture(scope="module")
def mj():
    cfg = SceneConfig(n_objects=1)
    m = mujoco.MjModel.from_xml_string(
        build_scene_xml(cfg, sample_objects(cfg, np.random.default_rng(0)))
    )
    return m, mujoco.MjData(m)


def test_urdf_and_mjcf_forward_kinematics_agree_within_1mm(mj):
    m, d = mj
    kin = ArmKinematics()
    rng = np.random.default_rng(0)
    qadr = [m.jnt_qposadr[m.joint(n).id] for n in kin.arm.joint_names]
    worst = 0.0
    for _ in range(200):
        q = rng.uniform(-np.pi, np.pi, size=6)
        d.qpos[qadr] = q
        mujoco.mj_kinematics(m, d)
        frames = kin.link_frames(q)
        for link, t in frames.items():
            worst = max(worst, np.linalg.norm(d.body(link).xpos - t[:3, 3]))
            np.testing.assert_allclose(d.body(link).xmat.reshape(3, 3), t[:3, :3], atol=1e-5)
        worst = max(worst, np.linalg.norm(d.site("tool_site").xpos - kin.tool_position(q)))
    assert worst <= 1e-3, f"max FK disagreement {worst * 1000:.3f} mm"


def test_urdf_matches_published_ur5e_reach():
    kin = ArmKinematics()
    # At q = 0 the UR5e flange lies at x = a2 + a3, y = -(d4 + d6), z = d1 - d5.
    flange = kin.link_frames(np.zeros(6))["tool0"][:3, 3]
    np.testing.assert_allclose(flange, [-0.8172, -0.2329, 0.0628], atol=1e-6)


def test_limits_from_urdf():
    arm = load_arm()
    assert arm.joint_names[0] == "shoulder_pan_joint" and len(arm.joint_names) == 6
    np.testing.assert_allclose(arm.velocity_limit, np.pi, atol=1e-5)
    assert arm.lower[2] == pytest.approx(-np.pi, abs=1e-5)


def test_jacobian_matches_finite_differences():
    kin = ArmKinematics()
    q = np.array([3.0, -1.7, 1.6, -1.4, -1.5, 0.3])
    jac = kin.jacobian(q)
    eps = 1e-6
    for i in range(6):
        dq = np.zeros(6)
        dq[i] = eps
        fd = (kin.tool_position(q + dq) - kin.tool_position(q - dq)) / (2 * eps)
        np.testing.assert_allclose(jac[:3, i], fd, atol=1e-6)


def test_ik_reaches_tool_down_targets():
    kin = ArmKinematics()
    home = np.array([np.pi, -1.9, 1.9, -np.pi / 2, -np.pi / 2, 0.0])
    q = home
    for target in ([0.45, 0.0, 0.2], [0.55, -0.2, 0.05], [0.2, 0.45, 0.2]):
        res = kin.ik_tool_down(np.array(target), q, iters=200)
        assert res.converged, res
        pose = kin.tool_pose(res.q)
        np.testing.assert_allclose(pose[:3, 3], target, atol=2e-3)
        assert pose[2, 2] < -0.999  # tool axis points down
        q = res.q


@pytest.mark.parametrize(
    "bad, match",
    [
        ("<robot><link", "well-formed"),
        (
            '<robot name="r"><link name="a"/><link name="b"/><joint name="j" type="prismatic">'
            '<parent link="a"/><child link="b"/></joint></robot>',
            "prismatic",
        ),
        (
            '<robot name="r"><link name="a"/><link name="b"/><joint name="j" type="revolute">'
            '<parent link="a"/><child link="b"/></joint></robot>',
            "needs <limit>",
        ),
    ],
)
def test_malformed_urdf_is_rejected_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_urdf(bad)
