"""Trajectory shards, simulated data collection and (later) rosbag2 import."""

from wm_core.data.shards import SHARD_VERSION, ShardError, load_shard, save_shard

__all__ = ["SHARD_VERSION", "ShardError", "load_shard", "save_shard"]
