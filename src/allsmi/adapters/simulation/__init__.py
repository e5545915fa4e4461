"""Simulation: the deterministic cluster simulator behind the mock and the demo."""
