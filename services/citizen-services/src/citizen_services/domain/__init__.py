"""The catalogue domain: plain Python, no HTTP and no database."""
