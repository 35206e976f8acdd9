"""A local, deterministic simulator of the Gong API v2 (stdlib only)."""

from simulator.server import GongSimulator, SimConfig

__all__ = ["GongSimulator", "SimConfig"]
