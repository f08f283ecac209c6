"""Benchmarks: figures as ratios against a baseline run side by side (s5cmd)."""
