"""Training: the loss, the data module, the Lightning module, the trainer and its curves."""
