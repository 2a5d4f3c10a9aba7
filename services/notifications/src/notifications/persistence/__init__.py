"""Tables, migrations and queries of notifications.

Each repository (``notifications.py``, ``templates.py``, ``notify_services.py``,
``contacts.py``, ``webhooks.py``) holds one area's SQL, claims and SQLite/PostgreSQL
branches, over a database session: ``NotificationRepository(uow.db)`` in a unit of work,
``TemplateRepository(db)`` on a read session. ``application/`` takes repositories as
arguments, so its unit tests pass in-memory fakes (``tests/unit/conftest.py``).
"""
