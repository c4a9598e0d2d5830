"""Phase reports built from the store: HTML, PDF, Markdown, CSV, JSON."""
