"""Outbound mail: replies through the outbox, rendering, suppression rules, alerts."""
