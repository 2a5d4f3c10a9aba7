"""Full-text search over published catalogue entries.

PostgreSQL: a GIN index on the ``tsvector`` expression the search query uses
(:data:`citizen_services.persistence.search.PG_DOCUMENT`). SQLite: an FTS5 table
``catalogue_service_fts`` (porter stemming) kept in sync by triggers on ``catalogue_service``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Keep in step with citizen_services.persistence.search.PG_DOCUMENT (the index is only used
#: when the query's expression is the same).
PG_DOCUMENT = ("to_tsvector('english'::regconfig, coalesce(name, '') || ' ' || "
               "coalesce(description, '') || ' ' || coalesce(keywords::text, ''))")

_FTS_ROW = "new.rowid, new.id, new.name, new.description, coalesce(new.keywords, '')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_catalogue_service_search ON catalogue_service "
                   f"USING gin (({PG_DOCUMENT}))")
        return
    op.execute("CREATE VIRTUAL TABLE catalogue_service_fts USING fts5("
               "service_id UNINDEXED, name, description, keywords, "
               "tokenize='porter unicode61')")
    op.execute("INSERT INTO catalogue_service_fts (rowid, service_id, name, description, "
               "keywords) SELECT rowid, id, name, description, coalesce(keywords, '') "
               "FROM catalogue_service")
    op.execute(f"""CREATE TRIGGER catalogue_service_fts_insert AFTER INSERT ON catalogue_service
        BEGIN
          INSERT INTO catalogue_service_fts (rowid, service_id, name, description, keywords)
          VALUES ({_FTS_ROW});
        END""")
    op.execute(f"""CREATE TRIGGER catalogue_service_fts_update AFTER UPDATE ON catalogue_service
        BEGIN
          DELETE FROM catalogue_service_fts WHERE rowid = old.rowid;
          INSERT INTO catalogue_service_fts (rowid, service_id, name, description, keywords)
          VALUES ({_FTS_ROW});
        END""")
    op.execute("""CREATE TRIGGER catalogue_service_fts_delete AFTER DELETE ON catalogue_service
        BEGIN
          DELETE FROM catalogue_service_fts WHERE rowid = old.rowid;
        END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_catalogue_service_search")
        return
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER catalogue_service_fts_{name}")
    op.execute("DROP TABLE catalogue_service_fts")
