"""Deterministic simulation of the real protocol code (see tests/sim/run.py)."""
