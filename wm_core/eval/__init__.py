"""Episode runner, policy registry, baseline policies and reports."""
