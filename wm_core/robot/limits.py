"""Limits that both the simulator's safety monitor and the brain's safety filter use."""

ISO_10218_REDUCED_SPEED = 0.25
"""Tool speed (m/s) of ISO 10218-1's reduced speed for collaborative operation."""

CONTROL_HZ = (1.0, 100.0)
"""Allowed agent / command rates (Hz): the simulator, the planner and the safety filter."""
MAX_TOOL_STEP = (0.001, 0.05)
"""Allowed tool displacement (m) of a unit action per step."""
