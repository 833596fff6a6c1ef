import numpy as np

from wm_core.calib.transforms import (
    R_from_quat_xyzw,
    T_from_rvec_tvec,
    T_from_xyz_quat,
    inv_T,
    is_rigid,
    make_T,
    mean_rotation,
    project_to_so3,
    quat_xyzw_from_R,
    rot_exp,
    rot_log,
    rotation_angle_deg,
    rvec_tvec_from_T,
    xyz_quat_from_T,
)


def _random_T(rng):
    return make_T(rot_exp(rng.normal(size=3)), rng.normal(size=3))


def test_inverse_and_stacked_inverse():
    rng = np.random.default_rng(0)
    Ts = np.stack([_random_T(rng) for _ in range(5)])  # [5, 4, 4]
    assert np.allclose(inv_T(Ts) @ Ts, np.eye(4), atol=1e-12)
    assert np.allclose(inv_T(Ts[0]), np.linalg.inv(Ts[0]), atol=1e-12)


def test_quaternion_xyzw_round_trip_and_ros_order():
    # 90 deg about z: (x, y, z, w) = (0, 0, sin 45, cos 45)
    q = quat_xyzw_from_R(rot_exp([0, 0, np.pi / 2]))
    assert np.allclose(q, [0, 0, np.sqrt(0.5), np.sqrt(0.5)])
    rng = np.random.default_rng(1)
    for _ in range(20):
        T = _random_T(rng)
        xyz, q = xyz_quat_from_T(T)
        assert q[3] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
        assert np.allclose(T_from_xyz_quat(xyz, q), T, atol=1e-12)
        assert np.allclose(R_from_quat_xyzw(-q), T[:3, :3], atol=1e-12)  # sign-free


def test_rvec_round_trip_and_angles():
    rng = np.random.default_rng(2)
    T = _random_T(rng)
    rvec, tvec = rvec_tvec_from_T(T)
    assert np.allclose(T_from_rvec_tvec(rvec, tvec), T, atol=1e-12)
    assert abs(rotation_angle_deg(rot_exp([0.3, 0, 0])) - np.degrees(0.3)) < 1e-9
    assert np.allclose(rot_log(rot_exp([0.1, -0.2, 0.3])), [0.1, -0.2, 0.3])


def test_mean_rotation_and_projection():
    base = rot_exp([0.2, 0.1, -0.4])
    Rs = np.stack([base @ rot_exp([d, -d, 0]) for d in (-0.01, 0.0, 0.01)])
    assert rotation_angle_deg(mean_rotation(Rs).T @ base) < 1e-3
    R = project_to_so3(base + 1e-3 * np.ones((3, 3)))
    assert is_rigid(make_T(R, [0, 0, 0]))
    assert not is_rigid(np.diag([1.0, 1.0, -1.0, 1.0]))
