"""Retraining: encode new turns, detect drift, decide, combine the data."""
