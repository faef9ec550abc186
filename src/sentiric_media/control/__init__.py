"""Ports and sessions: the pool with quarantine, the registry, the commands."""
