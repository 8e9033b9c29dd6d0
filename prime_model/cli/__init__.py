"""The ``prime`` and ``prime-demo`` commands."""
