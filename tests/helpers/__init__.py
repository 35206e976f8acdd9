"""Helpers for tests that run the real pipeline in a subprocess."""
