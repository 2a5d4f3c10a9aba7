"""HTTP routers of notifications."""
