"""Evaluation: retrieval metrics, the baselines, the report and the promotion gate."""
