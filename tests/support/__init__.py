"""Helpers the tests share: databases, a running service, mail to send."""
