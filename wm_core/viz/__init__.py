"""Seeing what the robot thinks: per-step episode records, annotated videos, rerun recordings.

Everything here runs after the control step or from recorded data: the control loop only
appends a :class:`~wm_core.viz.record.StepRecord` (array references, no drawing) per step.
It never imports the simulator, so the ROS episode driver builds the same records from what
the stack publishes.
"""

from wm_core.viz.record import VERDICTS, StepRecord, verdict_of

__all__ = ["VERDICTS", "StepRecord", "verdict_of"]
