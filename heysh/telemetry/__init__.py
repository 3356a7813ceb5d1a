"""Observability: tracing (OpenTelemetry), metrics (Prometheus) and structured logs."""
