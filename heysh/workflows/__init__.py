"""Deterministic workflow classes. No I/O here: activities do it."""
