"""Configuration (pydantic-settings) and structured logging, read once at start."""
