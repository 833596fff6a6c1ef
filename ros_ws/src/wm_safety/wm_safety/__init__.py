"""The hard safety filter between the planner and the arm (limits, keep-out, watchdog, e-stop)."""
