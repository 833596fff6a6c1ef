"""The planner's and the filter's batched torch forward kinematics against the numpy one."""

import numpy as np
import torch

from wm_core.robot import ArmKinematics
from wm_core.robot.capsules import ArmCapsules, box_penetration, capsule_points


def test_capsules_follow_the_numpy_link_frames_and_are_differentiable():
    kin = ArmKinematics()
    caps = ArmCapsules(kin.arm)
    q = np.random.default_rng(0).uniform(kin.lower, kin.upper, (32, 6))  # [B, 6]
    qt = torch.tensor(q, dtype=torch.float32, requires_grad=True)
    ends, tool = caps(qt)  # [B, C, 2, 3], [B, 3]
    links = [kin.arm.base_link] + [j.child for j in kin.arm.joints]
    for b in range(len(q)):
        frames = kin.link_frames(q[b])
        assert np.allclose(tool[b].detach().numpy(), kin.tool_position(q[b]), atol=1e-5)
        for c, owner in enumerate(caps.owners):
            frame = frames[links[owner]]  # [4, 4]
            want = (frame @ caps.segments[c].numpy().T).T[:, :3]  # [2, 3]
            assert np.allclose(ends[b, c].detach().numpy(), want, atol=1e-5)
    ends.sum().backward()
    assert torch.isfinite(qt.grad).all() and qt.grad.abs().sum() > 0


def test_box_penetration_is_the_push_out_depth_of_a_sphere():
    radii = torch.tensor([0.05])
    lo, hi = np.zeros(3), np.ones(3)
    pts = torch.tensor([[0.5, 0.5, 0.98], [0.5, 0.5, 1.03], [2.0, 0.5, 0.5]])[:, None, None]
    pen = box_penetration(pts, radii, lo, hi)  # [3, C=1, n=1]
    assert np.allclose(pen[:, 0, 0].numpy(), [0.07, 0.02, 0.0], atol=1e-6)
    mid = capsule_points(torch.tensor([[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]]), 3)  # [1, 3, 3]
    assert np.allclose(mid[0, 1].numpy(), [0.5, 1.0, 1.5])
