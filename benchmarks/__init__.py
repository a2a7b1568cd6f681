"""Benchmarks of the harness itself (not of the frameworks): see benchmarks/overhead.py."""
