"""Prometheus text: the exposition writer and the page parser."""
