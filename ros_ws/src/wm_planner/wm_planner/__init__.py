"""Latent MPC planner node: latent + joint state to joint trajectory commands."""
