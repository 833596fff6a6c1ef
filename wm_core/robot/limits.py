"""Limits that both the simulator's safety monitor and the brain's safety filter use."""

ISO_10218_REDUCED_SPEED = 0.25
"""Tool speed (m/s) of ISO 10218-1's reduced speed for collaborative operation."""
