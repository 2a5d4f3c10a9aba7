"""What inclusion consumes."""
