"""HTTP routers of citizen-services."""
