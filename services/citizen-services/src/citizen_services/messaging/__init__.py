"""What citizen-services consumes."""
