"""Fixtures of the ROS node tests (each test module uses its own ROS_DOMAIN_ID)."""

from __future__ import annotations

import gc

import pytest
import ros_harness  # noqa: F401  (makes the ros_ws packages importable)


@pytest.fixture(autouse=True)
def _collect_this_tests_garbage():
    """Collect each ROS test's garbage at its own teardown. rclpy futures whose exception was
    never fetched (a callback that raced a node's destruction: "cannot use Destroyable because
    destruction was requested") print that line to stderr when collected; left to a later
    automatic collection, the line landed inside another test's captured stderr and failed its
    one-line-error check (fresh-clone run, test_soak's CLI errors)."""
    yield
    gc.collect()
