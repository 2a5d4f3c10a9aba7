"""SQLModel tables, Alembic migrations and the repositories of citizen-services: every query
(``catalogue.py``, ``requests.py``, ``outbox.py``; the search SQL in ``search.py``).

One way to get a repository: build it from the session it works in, a unit of work's
(``CatalogueRepository(uow.db)``: commands, the erasure handler, the seed) or a read
session (``CatalogueRepository(db)``: queries), and hand it to ``application/``; routes get
them from ``api/deps.py``. Unit tests of ``application/`` pass in-memory fakes instead
(``tests/unit/fakes.py``)."""
