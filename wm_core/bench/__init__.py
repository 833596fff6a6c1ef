"""Benchmarks behind ``wm bench``. Each returns a JSON-serialisable dict."""
