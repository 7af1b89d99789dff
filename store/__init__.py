"""Persistence: engine and sessions, models, the import state machine, one module per aggregate."""
