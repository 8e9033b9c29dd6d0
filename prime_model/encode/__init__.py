"""Y-Encoders (frozen sentence encoders) and the EncodedTurns they produce."""
