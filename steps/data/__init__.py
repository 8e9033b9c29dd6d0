"""Data steps: load, validate, split and encode the turns."""
