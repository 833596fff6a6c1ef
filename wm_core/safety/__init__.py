"""The hard safety filter: the last layer before any joint command reaches an arm."""

from wm_core.safety.filter import FilterConfig, FilterResult, SafetyFilter

__all__ = ["FilterConfig", "FilterResult", "SafetyFilter"]
