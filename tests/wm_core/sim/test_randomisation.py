"""Domain randomisation of the MuJoCo world: appearance, camera position and table height."""

import dataclasses

import numpy as np
import pytest

from wm_core.cell import sim_cell
from wm_core.config import ConfigError
from wm_core.data.collect import CollectConfig, collect_episode
from wm_core.eval.policies import OraclePolicy
from wm_core.sim import SceneConfig, TableClearingEnv
from wm_core.sim.scene import ARM_RGB, BIN_RGB, TABLE_RGB, TEXTURES, draw_appearance
from wm_core.train.readout import episode_cell

DR = SceneConfig(image_size=48, appearance_jitter=1.0, table_height_jitter=0.05, camera_shift=0.05)


def _first(cfg: SceneConfig, seed: int):
    env = TableClearingEnv(cfg)
    obs, info = env.reset(seed)
    out = obs, info, env.camera_info().T_world_cam, env.cell
    env.close()
    return out


def test_appearance_is_drawn_per_seed_and_zero_strength_is_the_nominal_look():
    a = draw_appearance(np.random.default_rng(3), 0.8, 4)
    b = draw_appearance(np.random.default_rng(3), 0.8, 4)
    assert a == b
    assert a != draw_appearance(np.random.default_rng(4), 0.8, 4)
    assert a.table_texture in TEXTURES and len(a.object_textures) == 4
    nominal = draw_appearance(np.random.default_rng(3), 0.0, 4)
    np.testing.assert_allclose(nominal.table, (TABLE_RGB, TABLE_RGB))
    np.testing.assert_allclose(nominal.bin, BIN_RGB)
    np.testing.assert_allclose(nominal.arm, ARM_RGB)
    assert nominal.table_texture == "flat" and nominal.table_marks == 0
    assert nominal.object_textures == (None,) * 4
    np.testing.assert_allclose(nominal.light_tint, np.ones((2, 3)))


def test_randomisation_changes_the_look_not_the_seeds_scene():
    """Domain randomisation has its own random stream: a seed's objects and camera jitter
    are the same with it on or off, only the rendering and the table height differ."""
    base = SceneConfig(image_size=48, camera_jitter_deg=3)
    obs0, info0, pose0, cell0 = _first(base, 5)
    obs1, info1, pose1, cell1 = _first(dataclasses.replace(base, appearance_jitter=1.0), 5)
    np.testing.assert_allclose(info0["object_pos"], info1["object_pos"], atol=1e-9)
    np.testing.assert_array_equal(pose0, pose1)
    assert cell0 == cell1 == sim_cell()
    assert np.abs(obs0["image"].astype(int) - obs1["image"]).mean() > 5
    again = _first(dataclasses.replace(base, appearance_jitter=1.0), 5)[0]
    np.testing.assert_array_equal(obs1["image"], again["image"])


def test_the_table_moves_with_its_objects_bin_and_workspace():
    tops = []
    for seed in range(4):
        env = TableClearingEnv(dataclasses.replace(DR, render_images=False))
        _, info = env.reset(seed)
        top = env.cell.table.top_z
        tops.append(top)
        assert abs(top - sim_cell().table.top_z) <= 0.05
        # objects rest on the moved table (not inside it, not dropped onto it)
        half = np.array([o.half_height for o in env.objects])
        np.testing.assert_allclose(info["object_pos"][:, 2] - half, top, atol=0.004)
        assert env.cell.workspace_lo[2] == pytest.approx(sim_cell().workspace_lo[2] + top)
        assert env.cell.arm == sim_cell().arm and env.cell.camera == sim_cell().camera
        # the oracle still clears it: the arm reaches the moved table and bin
        pol = OraclePolicy(env.cfg, env.cell)
        pol.reset(seed)
        obs = None
        for _ in range(400):
            obs, _, term, trunc, info = env.step(pol.act(obs, info))
            if term or trunc:
                break
        m = env.episode_metrics()
        assert m["cleared"] == m["objects"], (seed, m)
        assert sum(m["safety"].values()) == 0, (seed, m["safety"])
        env.close()
    assert len(set(tops)) == 4


def test_the_camera_moves_by_at_most_the_shift():
    _, _, pose0, _ = _first(SceneConfig(image_size=16), 9)
    _, _, pose1, _ = _first(SceneConfig(image_size=16, camera_shift=0.05), 9)
    d = pose1[:3, 3] - pose0[:3, 3]
    assert 0 < np.abs(d).max() <= 0.05 + 1e-9
    np.testing.assert_allclose(pose1[:3, :3], pose0[:3, :3], atol=1e-9)


def test_collected_episodes_record_what_the_readout_needs_and_it_uses_it():
    ep = collect_episode(7, DR, CollectConfig(steps_per_episode=2, image_size=48))
    top = ep.meta["table_top_z"]
    assert top != 0.0 and abs(top) <= 0.05
    cell = episode_cell(ep)
    assert cell.table.top_z == pytest.approx(top)
    np.testing.assert_allclose(cell.camera.pose, ep.labels["camera_pose"], atol=1e-6)
    # shards from before the field, and a corrupt value, read as the cell's own table
    for meta in ({}, {"table_top_z": "high"}, {"table_top_z": float("nan")}):
        old = dataclasses.replace(ep, meta=meta)
        assert episode_cell(old).table.top_z == sim_cell().table.top_z


@pytest.mark.parametrize(
    "field, value",
    [("appearance_jitter", 1.5), ("table_height_jitter", 0.2), ("camera_shift", -0.1)],
)
def test_bad_randomisation_values_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        SceneConfig(**{field: value})
