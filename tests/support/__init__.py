"""Helpers for the concurrency and crash tests: store conf dirs, AWS views, a crash wrapper."""
