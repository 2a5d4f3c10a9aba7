"""HTTP routers of inclusion."""
