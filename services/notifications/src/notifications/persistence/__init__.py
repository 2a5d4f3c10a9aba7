"""Tables and migrations of notifications."""
