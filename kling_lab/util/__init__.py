"""Small helpers every layer may use: a loop in a thread, process liveness, time, text."""
