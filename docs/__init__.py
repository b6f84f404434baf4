"""The documentation site: pages (Markdown) and, in gen/, the generators of its references."""
