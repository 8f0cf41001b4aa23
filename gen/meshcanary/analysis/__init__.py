"""Metric-gated canary steps: each canary's checks read from Prometheus, and the decision.

`prometheus` is the HTTP client: instant and range queries, every failure a `PrometheusError`
of one kind (unreachable, timeout, http-error, bad-query, bad-response).
"""
