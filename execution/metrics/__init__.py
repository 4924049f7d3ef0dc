"""The metrics library's implementation; import it through :mod:`execution.metrics_normalizer`."""
