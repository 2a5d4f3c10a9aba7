"""Tables and migrations of inclusion."""
