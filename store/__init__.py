"""The store: SQLModel tables, engines, repository functions and migrations."""
