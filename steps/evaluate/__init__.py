"""Evaluation against the baselines and the promotion gate."""
