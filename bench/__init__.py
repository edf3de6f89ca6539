"""Benchmarks that print figures (never timed tests). `make bench` runs them all: `python -m bench`."""
