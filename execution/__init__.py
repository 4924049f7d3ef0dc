"""Execution layer: metrics, reward, governor, feedback bridge, autotuner."""
