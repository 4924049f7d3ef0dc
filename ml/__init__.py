"""ML layer: signal model, telemetry, drift detection, retraining."""
