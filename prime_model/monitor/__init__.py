"""Monitoring: embedding drift and the retraining decision."""
