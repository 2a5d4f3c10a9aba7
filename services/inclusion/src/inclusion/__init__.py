"""inclusion."""
