"""The episode driver's record of what the stack showed, for the annotated video and rerun.

While episode 0 runs (``wm up sim --episodes N`` with ``--video annotated`` or ``--rerun``), the
driver keeps, besides the camera frames, what the stack publishes about each step
(``wm_bringup.vizmsgs``):

==========================  ================================================================
``/wm/detections``          detections, target, task phase, surprise, hold (image stamp)
``/wm/plan_markers``        the executed plan's tool path (image stamp)
``/wm/safety/verdict``      the safety filter's verdict on the command (image stamp)
``/joint_states``           measured joints (simulated time)
``/diagnostics``            the planner's ``cost_<term>`` values: sent every
                            ``diagnostics_period_s`` (0.5 s under the driver), so the cost terms
                            of a step are those of the last report before it, not its own
==========================  ================================================================

:func:`build_records` joins them on the camera frame's stamp into
:class:`wm_core.viz.record.StepRecord` s. A frame the planner did not plan on (it takes the
newest latent when it is free) has no detections, plan or verdict: the video shows it so.
The stack has no higher-resolution render for people: the video has the camera panel only.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field

import numpy as np

from wm_core.viz.record import NO_VERDICT, VERDICTS, StepRecord

log = logging.getLogger(__name__)


@dataclass
class ViewLog:
    """What the stack published about each step, keyed by stamp (ns). Filled under the
    probe's lock by its callbacks."""

    views: dict[int, dict] = field(default_factory=dict)
    """image stamp -> ``vizmsgs.parse_detection_markers`` of that step."""
    plans: dict[int, np.ndarray] = field(default_factory=dict)
    """image stamp -> planned tool path [H, 3]."""
    verdicts: dict[int, str] = field(default_factory=dict)
    """image stamp -> the safety filter's verdict."""
    joints: list[tuple[int, np.ndarray]] = field(default_factory=list)
    """(stamp, measured joints [6]), in arrival order."""
    costs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    """(stamp, cost terms) of the planner's diagnostics reports."""


def _latest_before(items: list[tuple[int, object]], stamp: int):
    """The value of the last item (sorted by stamp) stamped at or before ``stamp``, or None."""
    keys = [s for s, _ in items]
    i = bisect.bisect_right(keys, stamp)
    return items[i - 1][1] if i else None


def build_records(
    frames: list[tuple[int, np.ndarray]], view: ViewLog, start_ns: int
) -> list[StepRecord]:
    """Camera frames (stamp ns, [H, W, 3]) from ``start_ns`` on + the view log -> one record
    per frame that has a measured joint state at or before it."""
    joints = sorted(view.joints, key=lambda x: x[0])
    costs = sorted(view.costs, key=lambda x: x[0])
    records: list[StepRecord] = []
    skipped = 0
    for stamp, image in sorted(frames, key=lambda x: x[0]):
        if stamp < start_ns:
            continue
        q = _latest_before(joints, stamp)
        if q is None:
            skipped += 1
            continue
        v = view.views.get(stamp)
        plan = view.plans.get(stamp)
        verdict = view.verdicts.get(stamp, NO_VERDICT)
        records.append(
            StepRecord(
                step=len(records),
                t=(stamp - start_ns) * 1e-9,
                joint_pos=q,
                image=image,
                detections=v["detections"] if v else np.zeros((0, 4)),
                target=v["target"] if v else None,
                tool_path=plan,
                phase=v["phase"] if v else "",
                surprise=v["surprise"] if v else 0.0,
                hold=v["hold"] if v else "",
                verdict=verdict if verdict in VERDICTS else NO_VERDICT,
                costs=(_latest_before(costs, stamp) or {}) if plan is not None else {},
            )
        )
    if skipped:
        log.info("%d frame(s) before the first joint state left out of the episode view", skipped)
    return records
