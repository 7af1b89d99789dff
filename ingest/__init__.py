"""Intake: the one door in (accept), the SMTP listener, workers, commands and wiring."""
