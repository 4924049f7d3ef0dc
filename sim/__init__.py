"""Simulated sources: what the jobs and tests use in place of live upstream systems."""
