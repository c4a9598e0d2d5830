"""The gate: step state per service, approve / revert / auto-revert, decisions, routers."""
