"""SQLModel tables and Alembic migrations of citizen-services."""
