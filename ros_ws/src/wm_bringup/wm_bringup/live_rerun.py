"""``wm up sim --rerun FILE.rrd``: the running stack, recorded into a rerun file when it stops.

A recorder in the ``wm up`` process (its own rclpy context; the nodes run in their own
processes, so it takes no time from them) keeps the camera frames and what the stack publishes
about each step (:mod:`wm_bringup.episode_view`) while the stack runs. When the stack stops
(Ctrl-C, SIGTERM or ``--seconds``) the newest ``keep_steps`` steps go into the file with
:func:`wm_core.viz.rerun_log.write_rrd`. Only the sim profile's camera topic is recorded, and
only in ``processes`` mode (in one process the recorder would share the nodes' interpreter).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from wm_bringup.episode_view import build_records
from wm_bringup.episodes import StackProbe
from wm_core.cell import Workcell

log = logging.getLogger(__name__)

KEEP_STEPS = 3000
"""Steps kept for the file (5 minutes at 10 Hz, about 150 MB of 128 px frames); older ones are
dropped while the stack runs, so a long run does not grow without bound."""


def up_with_rerun(
    run: Callable[[], int], path: Path, cell: Workcell, keep_steps: int = KEEP_STEPS
) -> int:
    """Call ``run`` (which brings the stack up and returns its exit status) while recording;
    then write the .rrd file. Returns ``run``'s status."""
    if keep_steps < 1:
        raise ValueError(f"keep_steps={keep_steps} must be >= 1")
    probe = StackProbe()
    try:
        probe.record_images(True, view=True, keep=keep_steps)
        code = run()
        frames = probe.record_images(False)
        view = probe.take_view()
    finally:
        probe.close()
    if not frames or view is None:
        log.warning("no camera frame arrived: %s not written", path)
        return code
    records = build_records(frames, view, frames[0][0])
    if not records:
        log.warning("no joint state arrived with the frames: %s not written", path)
        return code
    from wm_core.viz.rerun_log import write_rrd

    write_rrd(records, cell, path, app_id="wm up", name="wm up sim")
    log.info(
        "rerun recording of the last %d steps: %s (open with: rerun %s)", len(records), path, path
    )
    return code
