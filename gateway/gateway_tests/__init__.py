"""The gateway's tests (a package with a name of its own: see ``[tool.pytest.ini_options]``
in the root ``pyproject.toml``)."""
