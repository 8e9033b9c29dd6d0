"""Export, latency benchmark and batch prediction."""
