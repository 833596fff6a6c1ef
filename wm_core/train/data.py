"""Training windows cut from trajectory shards: images, proprioception and actions."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from wm_core.data.shards import Episode, scan_shards
from wm_core.robot import ArmKinematics

log = logging.getLogger(__name__)


def proprio_from_obs(kin: ArmKinematics, joint_pos: np.ndarray, suction: np.ndarray) -> np.ndarray:
    """[T, 6] joints + [T, 1] suction -> [T, 10] (joints, FK tool position, suction).

    Everything here is known to a real arm: it is not simulator ground truth."""
    tool = np.stack([kin.tool_position(q) for q in joint_pos])  # [T, 3]
    return np.concatenate([joint_pos, tool, suction], axis=1).astype(np.float32)


class WindowDataset(Dataset):
    """Every window of ``horizon + 1`` consecutive steps from every usable shard."""

    def __init__(self, root: Path, horizon: int, image_size: int):
        episodes, errors = scan_shards(root)
        self.skipped = errors  # bad shards are reported, never silently dropped
        kin = ArmKinematics()
        self.episodes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.index: list[tuple[int, int]] = []
        for ep in episodes:
            if not self._usable(ep, horizon, image_size):
                continue
            img = torch.from_numpy(ep.obs["image"]).permute(0, 3, 1, 2).contiguous()  # [T+1,3,S,S]
            prop = torch.from_numpy(proprio_from_obs(kin, ep.obs["joint_pos"], ep.obs["suction"]))
            act = torch.from_numpy(ep.action)  # [T, 4]
            k = len(self.episodes)
            self.episodes.append((img, prop, act))
            self.index += [(k, t) for t in range(ep.n_steps - horizon + 1)]
        self.horizon = horizon
        if not self.index:
            raise ValueError(
                f"no training windows of horizon {horizon} at image size "
                f"{image_size} in {root} ({len(errors)} bad shards)"
            )

    @staticmethod
    def _usable(ep: Episode, horizon: int, image_size: int) -> bool:
        im = ep.obs.get("image")
        if im is None or im.shape[1:3] != (image_size, image_size):
            log.warning(
                "skipping episode %s: image shape %s, model wants %d px",
                ep.meta.get("seed", ep.meta.get("bag")),
                None if im is None else im.shape,
                image_size,
            )
            return False
        return ep.n_steps >= horizon

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        k, t = self.index[i]
        img, prop, act = self.episodes[k]
        h = self.horizon
        return img[t : t + h + 1], prop[t : t + h + 1], act[t : t + h]  # [H+1,3,S,S] [H+1,10] [H,4]
