"""Collectors: pull Prometheus range queries and tail gateway logs into the store."""
