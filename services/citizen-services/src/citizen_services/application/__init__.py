"""Commands and their handlers; one unit of work each; nothing HTTP-shaped."""
