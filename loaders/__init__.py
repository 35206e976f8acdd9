"""Loaders that push data from SQL into other systems (the reverse direction of the sync)."""
