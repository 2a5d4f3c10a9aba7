"""Commands and queries of inclusion; each command is one unit of work."""
