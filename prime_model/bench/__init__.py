"""Latency benchmark of every inference backend, its presets and its report."""
