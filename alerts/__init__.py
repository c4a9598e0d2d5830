"""Chat notifiers and the outbox that delivers them."""
