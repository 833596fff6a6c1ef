"""The object readout probe: projection, targets, fitting, detection, file checks."""

import mujoco
import numpy as np
import pytest
import torch

from wm_core.cell import sim_cell
from wm_core.models import ModelConfig, WorldModel
from wm_core.models.checkpoint import CheckpointError
from wm_core.models.readout import ObjectReadout, fit_readout, position_r2, project
from wm_core.sim import SceneConfig, TableClearingEnv
from wm_core.train.readout import load_readout, new_readout, targets_for


def test_projection_matches_the_rendered_image():
    """The object's pixels (render with it minus render without it) centre where `project`
    puts its centre."""
    env = TableClearingEnv(SceneConfig(n_objects=1, image_size=128))
    obs, info = env.reset(4)
    cam = env.camera_info()
    uv = project(info["object_pos"], cam.K, cam.T_world_cam)[0, :2]
    m, d = env.model, env.data
    d.qpos[m.jnt_qposadr[m.body_jntadr[env._obj_bodies[0]]] + 2] -= 5.0  # drop it out of view
    mujoco.mj_forward(m, d)
    diff = np.abs(obs["image"].astype(float) - env.render().astype(float)).sum(-1)  # [S, S]
    env.close()
    vs, us = np.nonzero(diff > 30)
    assert len(us) > 4
    assert abs(us.mean() - uv[0]) < 3 and abs(vs.mean() - uv[1]) < 3


def test_targets_put_each_object_in_its_cell():
    cfg = ModelConfig()
    model = WorldModel(cfg)
    cam = sim_cell().camera
    obj = np.array([[[0.45, 0.0, 0.025], [0.35, -0.2, 0.025]]])  # [1, K=2, 3]
    occ, pos = targets_for(model, obj)
    assert occ.shape == (1, 8, 8) and int(occ.sum()) == 2
    uv = project(obj[0], cam.k_for(cfg.image_size), cam.pose)
    for k in range(2):
        r, c = int(uv[k, 1] // 16), int(uv[k, 0] // 16)
        assert occ[0, r, c] == 1 and torch.allclose(pos[0, r, c], torch.tensor(obj[0, k]).float())


def test_fit_learns_a_linearly_encoded_scene():
    """Latents that carry objectness and offsets linearly: the probe must recover them."""
    g, d = 8, 8
    priors = np.zeros((g, g, 3), np.float32)
    priors[..., 0], priors[..., 1] = np.meshgrid(np.arange(g) * 0.1, np.arange(g) * 0.1)
    ro = ObjectReadout(d, g, priors)
    gen = torch.Generator().manual_seed(0)
    occ = (torch.rand(600, g, g, generator=gen) < 0.06).float()
    off = torch.rand(600, g, g, 3, generator=gen) * 0.1 - 0.05
    pos = (torch.as_tensor(priors) + off) * occ[..., None]
    z = torch.randn(600, g * g, d, generator=gen) * 0.1
    z[..., 0] += occ.flatten(1) * 3
    z[..., 1:4] += (off / 0.05).flatten(1, 2)
    fit_readout(ro, z[:500], occ[:500], pos[:500], steps=600)
    r2, err = position_r2(ro, z[500:], occ[500:], pos[500:])
    assert r2 > 0.9 and err < 0.01
    found = ro.detect(z[500:501])[0]
    assert abs(len(found) - int(occ[500].sum())) <= 1


def test_detect_suppresses_by_world_distance_not_by_patch_neighbourhood():
    """Two objects in adjacent patches are both found (a 3x3 max-pool would keep only the
    stronger); a weaker patch that sees the same object (within min_separation) is dropped."""
    g, d = 8, 4
    priors = np.zeros((g, g, 3), np.float32)
    priors[..., 0], priors[..., 1] = np.meshgrid(np.arange(g) * 0.07, np.arange(g) * 0.07)
    ro = ObjectReadout(d, g, priors)
    with torch.no_grad():  # a probe that reads objectness from channel 0, no offsets
        ro.conv.weight.zero_()
        ro.conv.bias.zero_()
        ro.conv.bias[0] = -2.0  # empty patches: objectness 0.12
        ro.conv.weight[0, 0, 1, 1] = 1.0
    z = torch.full((1, g, g, d), 0.0)
    z[0, 3, 3, 0], z[0, 3, 4, 0] = 7.0, 5.0  # two objects, adjacent patches, 7 cm apart
    found = ro.detect(z.reshape(1, g * g, d), threshold=0.5)[0]
    assert len(found) == 2 and found[0, 3] > found[1, 3]
    assert np.allclose(found[:, :2], [[0.21, 0.21], [0.28, 0.21]], atol=1e-5)
    only_one = ro.detect(z.reshape(1, g * g, d), threshold=0.5, min_separation=0.08)[0]
    assert len(only_one) == 1 and np.allclose(only_one[0, :2], [0.21, 0.21], atol=1e-5)


def test_readout_file_errors_name_the_problem(tmp_path):
    model = WorldModel(ModelConfig())
    with pytest.raises(CheckpointError, match="does not exist"):
        load_readout(tmp_path / "none.pt", model)
    torch.save({"version": 9}, tmp_path / "v9.pt")
    with pytest.raises(CheckpointError, match="readout version 9, expected 1"):
        load_readout(tmp_path / "v9.pt", model)
    other = new_readout(WorldModel(ModelConfig(latent_dim=16)))
    torch.save({"version": 1, "hidden": 0, "state": other.state_dict()}, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"conv.weight has shape \[4, 16, 3, 3\]"):
        load_readout(tmp_path / "shape.pt", model)


def test_fit_uses_each_frames_own_priors():
    """Frames from two camera poses (priors shifted 6 cm in x): the latents carry only the
    offset from each frame's own prior, so fitting with per-frame priors recovers the
    positions, and the shared buffer alone cannot."""
    g, d = 8, 8
    base = np.zeros((g, g, 3), np.float32)
    base[..., 0], base[..., 1] = np.meshgrid(np.arange(g) * 0.1, np.arange(g) * 0.1)
    shifted = base.copy()
    shifted[..., 0] += 0.06
    gen = torch.Generator().manual_seed(1)
    n = 600
    which = torch.rand(n, generator=gen) < 0.5  # [n] frames from the second camera
    priors = torch.where(
        which[:, None, None, None], torch.as_tensor(shifted), torch.as_tensor(base)
    )
    occ = (torch.rand(n, g, g, generator=gen) < 0.06).float()
    off = torch.rand(n, g, g, 3, generator=gen) * 0.06 - 0.03
    pos = (priors + off) * occ[..., None]
    z = torch.randn(n, g * g, d, generator=gen) * 0.1
    z[..., 0] += occ.flatten(1) * 3
    z[..., 1:4] += (off / 0.05).flatten(1, 2)
    own = ObjectReadout(d, g, base)
    fit_readout(own, z[:500], occ[:500], pos[:500], steps=600, priors=priors[:500])
    r2_own, err_own = position_r2(own, z[500:], occ[500:], pos[500:], priors[500:])
    shared = ObjectReadout(d, g, base)
    fit_readout(shared, z[:500], occ[:500], pos[:500], steps=600)
    _, err_shared = position_r2(shared, z[500:], occ[500:], pos[500:])
    assert r2_own > 0.9 and err_own < 0.01
    assert err_shared > 0.02  # half the frames are 6 cm off: the camera must be known


def test_episode_cell_takes_the_recorded_camera_pose():
    from wm_core.data.shards import Episode
    from wm_core.train.readout import episode_cell

    cell = sim_cell()
    pose = cell.camera.pose
    pose[:3, :3] = pose[:3, :3] @ np.array(  # 2 degrees about the optical axis
        [[np.cos(0.035), -np.sin(0.035), 0], [np.sin(0.035), np.cos(0.035), 0], [0, 0, 1]]
    )
    ep = Episode({}, np.zeros((0, 4), np.float32), {}, {"camera_pose": pose.astype(np.float32)})
    got = episode_cell(ep, cell)
    assert np.allclose(got.camera.pose, pose, atol=1e-6)
    assert got.camera.k_for(128).tolist() == cell.camera.k_for(128).tolist()
    assert episode_cell(Episode({}, np.zeros((0, 4), np.float32), {}, {}), cell) is cell
