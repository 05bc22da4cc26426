"""Shared test helpers: real local servers on loopback."""
