"""Benchmarks: each prints figures and ratios against peer libraries in one run."""
