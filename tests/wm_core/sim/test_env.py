import dataclasses

import numpy as np
import pytest

from wm_core.cell import sim_cell
from wm_core.config import ConfigError, from_mapping
from wm_core.eval.policies import OraclePolicy
from wm_core.sim import SceneConfig, TableClearingEnv


def _rollout(seed: int, steps: int, cfg: SceneConfig):
    env = TableClearingEnv(cfg)
    obs, info = env.reset(seed)
    pol = OraclePolicy(cfg, env.cell)
    pol.reset(seed)
    for _ in range(steps):
        obs, _, term, trunc, info = env.step(pol.act(obs, info))
        if term or trunc:
            break
    out = obs, info, env.episode_metrics()
    env.close()
    return out


def test_same_seed_same_scene_same_metrics():
    cfg = SceneConfig(image_size=32, camera_jitter_deg=3, light_jitter=0.3)
    a_obs, a_info, a_m = _rollout(5, 60, cfg)
    b_obs, b_info, b_m = _rollout(5, 60, cfg)
    assert a_m == b_m
    np.testing.assert_array_equal(a_obs["image"], b_obs["image"])
    np.testing.assert_array_equal(a_obs["joint_pos"], b_obs["joint_pos"])
    np.testing.assert_array_equal(a_info["object_pos"], b_info["object_pos"])
    c_obs, c_info, _ = _rollout(6, 60, cfg)
    assert not np.array_equal(a_info["object_pos"], c_info["object_pos"])


def test_observations_hold_only_what_a_real_robot_has():
    env = TableClearingEnv(SceneConfig(image_size=48, wrist_camera=True))
    obs, info = env.reset(0)
    assert set(obs) == {"image", "wrist_image", "joint_pos", "joint_vel", "suction", "suction_held"}
    assert obs["image"].shape == (48, 48, 3) and obs["image"].dtype == np.uint8
    assert obs["joint_pos"].shape == (6,) and obs["suction"].shape == (1,)
    assert {"object_pos", "tool_pos", "cleared", "dropped"} <= set(info)
    env.close()


def test_the_vacuum_switch_reads_what_the_cup_holds():
    """``obs['suction_held']``: the sensor a real suction gripper has, 1 exactly while an
    object is held (``info['held']``, ground truth) over an oracle episode with grips."""
    cfg = SceneConfig(n_objects=1, image_size=16)
    env = TableClearingEnv(cfg)
    obs, info = env.reset(3)
    pol = OraclePolicy(cfg, env.cell)
    pol.reset(3)
    seen = []
    for _ in range(150):
        obs, _, term, trunc, info = env.step(pol.act(obs, info))
        seen.append((obs["suction_held"][0], bool(info["held"].any())))
        if term or trunc:
            break
    env.close()
    assert all(h == float(truth) for h, truth in seen)
    assert any(truth for _, truth in seen) and not all(truth for _, truth in seen)


def test_randomisation_knobs_are_seeded():
    for k in (1, 6):
        env = TableClearingEnv(SceneConfig(n_objects=k, render_images=False))
        _, info = env.reset(11)
        assert info["object_pos"].shape == (k, 3)
        assert np.all(info["object_pos"][:, 2] > 0)  # resting on the table
        env.close()
    quats = []
    for jitter in (0.0, 5.0):
        env = TableClearingEnv(SceneConfig(camera_jitter_deg=jitter, image_size=32))
        env.reset(2)
        quats.append(env.model.cam_quat[env.model.camera("scene_cam").id].copy())
        env.close()
    angle = 2 * np.degrees(np.arccos(min(1.0, abs(float(np.dot(quats[0], quats[1]))))))
    assert 0 < angle <= 5.0 + 1e-6


def test_camera_intrinsics_and_extrinsics_project_the_tool():
    env = TableClearingEnv(SceneConfig(image_size=128))
    _, info = env.reset(0)
    cam = env.camera_info()
    p_world = np.append(info["tool_pos"], 1.0)
    p_cam = np.linalg.inv(cam.T_world_cam) @ p_world
    assert p_cam[2] > 0  # in front of the camera
    uv = cam.K @ (p_cam[:3] / p_cam[2])
    # MuJoCo's own projection of the same point, via its camera matrix, agrees.
    m, d = env.model, env.data
    cid = m.camera("scene_cam").id
    r = d.cam_xmat[cid].reshape(3, 3)
    local = r.T @ (info["tool_pos"] - d.cam_xpos[cid])  # MuJoCo camera frame, looks along -z
    f = cam.K[0, 0]
    np.testing.assert_allclose(
        uv[:2], [64 + f * local[0] / -local[2], 64 - f * local[1] / -local[2]], atol=1e-6
    )
    assert 0 <= uv[0] < 128 and 0 <= uv[1] < 128
    env.close()


def test_physics_rate_and_agent_rate():
    cfg = SceneConfig()
    assert 1 / cfg.physics_dt >= 500 and cfg.control_hz == pytest.approx(10)
    env = TableClearingEnv(dataclasses.replace(cfg, render_images=False))
    env.reset(0)
    _, _, _, _, info = env.step(np.zeros(4))
    assert info["sim_time"] == pytest.approx(0.1, abs=1e-9)
    env.close()


def test_bad_actions_are_rejected():
    env = TableClearingEnv(SceneConfig(render_images=False))
    env.reset(0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match="4 finite"):
        env.step(np.zeros(3))
    env.close()


def test_workspace_clip_keeps_tool_above_table():
    env = TableClearingEnv(SceneConfig(render_images=False))
    env.reset(0)
    for _ in range(40):
        _, _, _, _, info = env.step(np.array([0.0, 0.0, -1.0, -1.0]))
    assert info["tool_pos"][2] >= sim_cell().workspace_lo[2] - 0.01
    assert env.episode_metrics()["safety"]["arm_table_collision"] == 0
    env.close()


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("n_objects", 0, r"n_objects=0 must be an integer in \[1, 6\]"),
        ("n_objects", 2.5, "n_objects"),
        ("light_jitter", -0.1, r"light_jitter=-0.1 must be a number in \[0.0, 1.0\]"),
        ("physics_dt", 0.01, "physics_dt"),
    ],
)
def test_bad_config_values_name_field_value_and_range(field, value, match):
    with pytest.raises(ConfigError, match=match):
        SceneConfig(**{field: value})


def test_cell_geometry_in_a_scene_config_is_refused():
    """Keep-out boxes are the work cell's (wm_core.cell), not the scene config's."""
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['keepout_boxes'\]"):
        from_mapping(SceneConfig, {"keepout_boxes": []}, "scene.yaml")


def test_yaml_mapping_rejects_unknown_fields():
    with pytest.raises(ConfigError, match="unknown field"):
        from_mapping(SceneConfig, {"n_objectz": 3})
    cfg = from_mapping(SceneConfig, {"n_objects": 4, "object_half_size": [0.02, 0.03]})
    assert cfg.n_objects == 4 and cfg.object_half_size == (0.02, 0.03)
