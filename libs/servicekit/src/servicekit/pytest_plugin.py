"""pytest plugin (``-p servicekit.pytest_plugin``, in the root ``pyproject.toml``): the test
set-up every suite shares, defined once.

* ``database_url``: each test that asks for it runs twice, on SQLite (a file in the test's
  ``tmp_path``) and on PostgreSQL (a fresh database from ``mkinfra.testing``'s
  ``new_postgres_database``, started only when a test needs it). The file and the database
  are named after the project the test belongs to (``services/<name>/``,
  ``libs/<name>/``...), so a leftover is easy to place. A suite that needs a single
  database overrides the fixture in its own ``conftest.py``.

See ``docs/decisions/0001-sqlite-and-postgresql.md`` for why both databases.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

#: Folders whose children are projects (``services/inclusion``, ``libs/servicekit``).
_PROJECT_PARENTS = ("services", "libs")


def project_name(path: Path, root: Path) -> str:
    """The project a test file under ``root`` belongs to: ``services/<name>/...`` and
    ``libs/<name>/...`` give ``<name>``; any other top-level folder (``gateway``, ``tests``)
    its own name."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return "tests"
    if len(parts) > 2 and parts[0] in _PROJECT_PARENTS:
        return parts[1]
    return parts[0] if len(parts) > 1 else "tests"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: SQLite, then PostgreSQL (each test runs on both)."""
    name = project_name(Path(request.node.path), request.config.rootpath)
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/{name}.sqlite3"
    factory: Callable[..., str] = request.getfixturevalue("new_postgres_database")
    return factory(name.replace("-", "_"))
