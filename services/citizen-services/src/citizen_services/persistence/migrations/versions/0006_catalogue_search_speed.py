"""Catalogue search at 10,000 entries (``bench/search.py``), and a catalogue-wide change
counter for cheap conditional GETs.

PostgreSQL:

* ``search_document``: a stored generated ``tsvector`` (name weighted A, keywords B,
  description C) with a GIN index of the published entries (what citizens search; counting
  matches then skips the heap), replacing 0003's expression index. Ranking computed the
  expression's ``to_tsvector(...)`` again for every matching row (about 19 ms for a common
  word over 10,000 entries); the stored column is parsed once, on write.
* GIN ``jsonb_path_ops`` indexes on ``groups::jsonb`` and ``lgsl_codes::jsonb`` for the
  ``@>`` filters (the columns stay ``json``; the casts are immutable).

Both databases:

* btree ``(name, id)`` and ``(updated_at, name, id)``: pages in name or date order read 20 index
  entries instead of sorting the table;
* ``catalogue_state``: one row whose ``version`` every statement changing
  ``catalogue_service`` bumps (a trigger, so seeding, imports and direct SQL count too). List
  ETags are built from it, so ``If-None-Match`` answers 304 without running the search.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Keep in step with citizen_services.application.search (it reads the column by name).
PG_DOCUMENT = ("setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A') || "
               "setweight(to_tsvector('english'::regconfig, coalesce(keywords::text, '')), "
               "'B') || "
               "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')")
PG_OLD_DOCUMENT = ("to_tsvector('english'::regconfig, coalesce(name, '') || ' ' || "
                   "coalesce(description, '') || ' ' || coalesce(keywords::text, ''))")


def upgrade() -> None:
    op.execute("CREATE INDEX ix_catalogue_service_name_id ON catalogue_service (name, id)")
    op.execute("CREATE INDEX ix_catalogue_service_updated ON catalogue_service "
               "(updated_at, name, id)")
    op.execute("CREATE TABLE catalogue_state (id INTEGER PRIMARY KEY, "
               "version BIGINT NOT NULL)")
    op.execute("INSERT INTO catalogue_state (id, version) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE catalogue_service ADD COLUMN search_document tsvector "
                   f"GENERATED ALWAYS AS ({PG_DOCUMENT}) STORED")
        op.execute("CREATE INDEX ix_catalogue_service_document ON catalogue_service "
                   "USING gin (search_document) WHERE status = 'published'")
        op.execute("DROP INDEX ix_catalogue_service_search")
        op.execute("CREATE INDEX ix_catalogue_service_groups ON catalogue_service "
                   "USING gin ((groups::jsonb) jsonb_path_ops)")
        op.execute("CREATE INDEX ix_catalogue_service_lgsl ON catalogue_service "
                   "USING gin ((lgsl_codes::jsonb) jsonb_path_ops)")
        op.execute("""CREATE FUNCTION catalogue_state_bump() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              UPDATE catalogue_state SET version = version + 1 WHERE id = 1;
              RETURN NULL;
            END $$""")
        op.execute("CREATE TRIGGER catalogue_service_changed AFTER INSERT OR UPDATE OR "
                   "DELETE OR TRUNCATE ON catalogue_service FOR EACH STATEMENT "
                   "EXECUTE FUNCTION catalogue_state_bump()")
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"""CREATE TRIGGER catalogue_state_{event} AFTER {event.upper()}
            ON catalogue_service
            BEGIN
              UPDATE catalogue_state SET version = version + 1 WHERE id = 1;
            END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER catalogue_service_changed ON catalogue_service")
        op.execute("DROP FUNCTION catalogue_state_bump()")
        op.execute("DROP INDEX ix_catalogue_service_lgsl")
        op.execute("DROP INDEX ix_catalogue_service_groups")
        op.execute(f"CREATE INDEX ix_catalogue_service_search ON catalogue_service "
                   f"USING gin (({PG_OLD_DOCUMENT}))")
        op.execute("ALTER TABLE catalogue_service DROP COLUMN search_document")
    else:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER catalogue_state_{event}")
    op.execute("DROP TABLE catalogue_state")
    op.execute("DROP INDEX ix_catalogue_service_updated")
    op.execute("DROP INDEX ix_catalogue_service_name_id")
