"""The inclusion domain: plain Python, no I/O."""
