"""What notifications consumes."""
