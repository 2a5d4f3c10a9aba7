"""Catalogue search: ``GET /api/v1/services?q=…`` over 10,000 published entries on
PostgreSQL, direct to citizen-services and through the gateway, in the same run.

Set-up: PostgreSQL (``bench._infra.postgres``), citizen-services on it and the gateway in
front, each in its own process. No Kafka: the benchmark only reads, so the service runs with
messaging off (the outbox relay would only idle). The catalogue is 10,000 published entries
generated from the seed file (242 Milton Keynes services in each of 42 MK areas, with varied
descriptions, keywords and channels), inserted with SQL through the service's own table
definition after its migrations ran, so the full-text and filter indexes are the real ones,
then ``VACUUM ANALYZE`` (what autovacuum does to a settled table).

Load: wrk (2 threads) with a Lua script rotating over 48 searches: keywords, keyword + area,
group / channel / LGSL filters, name order and later pages, anonymous (the catalogue is
public). Three measurements, each taken as two halves alternating between direct and
gateway (the halves' means are printed):

* throughput: 16 connections, saturating the machine (req/s and its p50/p95/p99);
* latency: 1 connection, one request at a time, so the percentiles are the search's and the
  gateway's cost, not queueing on 2 cores; **goal p95 <= 15 ms through the gateway**;
* repeat reads: the same searches with ``If-None-Match`` (each answers 304).

Baseline, same run: the SQL the service runs for each search (``find_services`` on the
service's own read session, in-process, statements and parameters captured as they reach the
driver), run straight through asyncpg, one connection, rotating over the same 48 searches, in
two halves around the one-connection HTTP measurement. **Goal: the service's p95 (direct,
one connection) <= 2x the SQL's p95 through asyncpg** (the database's own cost is the floor).

``BENCH_SEARCH_SECONDS`` (default 10) bounds each measurement; loopback only.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import _report
from bench._infra import create_database, postgres
from bench._procs import Processes, catalogue_env, ensure_wrk, run_wrk
from mkinfra._proc import free_port

DURATION = int(os.environ.get("BENCH_SEARCH_SECONDS", "10"))
ENTRIES = 10_000
CONNECTIONS = 16
THREADS = 2
GOAL_P95_MS = 15.0
GOAL_SQL_RATIO = 2.0

AREAS = [
    "Bletchley",
    "Wolverton",
    "Newport Pagnell",
    "Olney",
    "Stony Stratford",
    "Woburn Sands",
    "Fenny Stratford",
    "Central Milton Keynes",
    "Kents Hill",
    "Emerson Valley",
    "Furzton",
    "Shenley Church End",
    "Great Linford",
    "Bradwell",
    "Willen",
    "Netherfield",
    "Oldbrook",
    "Westcroft",
    "Broughton",
    "Oakgrove",
    "Monkston",
    "Walnut Tree",
    "Tattenhoe",
    "Loughton",
    "Heelands",
    "Conniburrow",
    "Fishermead",
    "Springfield",
    "Woughton",
    "Crownhill",
    "Wavendon",
    "Brooklands",
    "Whitehouse",
    "Fairfields",
    "Newton Leys",
    "Bow Brickhill",
    "Sherington",
    "Hanslope",
    "Castlethorpe",
    "Great Holm",
    "Two Mile Ash",
    "Giffard Park",
]
SENTENCES = [
    "Residents of {area} can also get help at the local community hub.",
    "Most requests from {area} are dealt with within ten working days.",
    "You can apply online, by phone or in person at {area} library.",
    "Ward councillors for {area} can raise problems on your behalf.",
    "Accessible formats are available on request; ask for large print or Easy Read.",
    "Bring proof of address if you live in {area} or {other}.",
    "Appointments in {area} and {other} are offered on weekday mornings.",
    "If you need an interpreter, tell us when you contact us.",
]
EXTRA_KEYWORDS = [
    "help",
    "advice",
    "apply",
    "report",
    "contact",
    "form",
    "local",
    "appointment",
    "online",
    "support",
]


def catalogue(n: int = ENTRIES, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` published entries, rows for ``catalogue_service``: each seed service once per
    area, with the area in its name, description and keywords, and varied wording,
    keywords, channels and dates."""
    from citizen_services.application.seed import seed_records
    from citizen_services.domain.catalogue import slugify

    rng = random.Random(seed)
    records = seed_records()
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        base = records[i % len(records)]
        area = AREAS[(i // len(records)) % len(AREAS)]
        other = rng.choice(AREAS)
        name = f"{base['name']}, {area}"
        slug = f"{slugify(base['name'])[:90].rstrip('-')}-{i}"
        channels = dict(base["channels"])
        if rng.random() < 0.25:
            channels["phone"] = None
        if rng.random() < 0.1:
            channels["sms"] = "07700 900" + f"{rng.randrange(1000):03d}"
        if rng.random() < 0.2:
            channels["email"] = "customer.services@milton-keynes.gov.uk"
        sentences = rng.sample(SENTENCES, 2)
        description = " ".join(
            [base["description"], *(s.format(area=area, other=other) for s in sentences)]
        )
        keywords = [*base["keywords"], area.lower(), *rng.sample(EXTRA_KEYWORDS, 2)]
        updated = now - timedelta(minutes=rng.randrange(365 * 24 * 60))
        reviewed = base.get("last_reviewed_on")
        rows.append(
            {
                **{
                    k: v
                    for k, v in base.items()
                    if k not in ("name", "description", "keywords", "channels", "last_reviewed_on")
                },
                "id": uuid.uuid4(),
                "slug": slug,
                "service_code": slug[-64:],
                "name": name,
                "description": description,
                "keywords": keywords,
                "channels": channels,
                "status": "published",
                "version": 2,
                "last_reviewed_on": date.fromisoformat(reviewed) if reviewed else None,
                "created_at": updated - timedelta(days=30),
                "updated_at": updated,
                "published_at": updated,
                "status_changed_at": updated,
                "status_changed_by": "bench",
                "status_reason": None,
            }
        )
    return rows


async def _load(url: str, rows: list[dict[str, Any]]) -> None:
    import sqlalchemy as sa

    from citizen_services.persistence.tables import CatalogueService
    from servicekit.db import Database

    db = Database(url)
    table = CatalogueService.__table__  # type: ignore[attr-defined]
    try:
        async with db.engine.begin() as conn:
            for start in range(0, len(rows), 1000):
                await conn.execute(sa.insert(table), rows[start : start + 1000])
        async with db.engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                sa.text("VACUUM ANALYZE catalogue_service")
            )
    finally:
        await db.dispose()


def searches() -> list[str]:
    """48 query strings: mostly words (what people type), some with filters and pages."""
    words = [
        "council tax",
        "bins",
        "pothole",
        "parking permit",
        "library",
        "planning",
        "recycling",
        "school admissions",
        "housing benefit",
        "blue badge",
        "taxi licence",
        "noise",
        "fly tipping",
        "street lights",
        "graffiti",
        "register a death",
        "birth certificate",
        "business rates",
        "trees",
        "flooding",
        "snow",
        "rent",
        "elections",
        "care",
    ]
    rng = random.Random(5)
    queries: list[dict[str, Any]] = [{"q": w} for w in words]
    queries += [{"q": f"{rng.choice(words)} {rng.choice(AREAS)}"} for _ in range(8)]
    queries += [
        {"group": g} for g in ("Housing", "Libraries", "Licensing", "Roads, parking and transport")
    ]
    queries += [
        {"q": w, "channel": c}
        for w, c in (("council tax", "online_url"), ("bins", "sms"), ("library", "venue"))
    ]
    queries += [{"lgsl": code} for code in (1203, 527, 856)]
    queries += [
        {"q": w, "group": g}
        for w, g in (
            ("permit", "Roads, parking and transport"),
            ("help", "Adult social care"),
            ("apply", "Schools and education"),
        )
    ]
    queries += [
        {"sort": "name", "page": 3},
        {"q": "report", "sort": "-updated_at"},
        {"q": "pay", "page": 2},
    ]
    return ["/api/v1/services?" + urllib.parse.urlencode(q) for q in queries]


def _query(path: str) -> Any:
    """The search a path asks for, as the API builds it."""
    from citizen_services.application import search

    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    return search.SearchServices(
        q=q.get("q"),
        group=q.get("group"),
        channel=search.Channel(q["channel"]) if "channel" in q else None,
        lgsl=int(q["lgsl"]) if "lgsl" in q else None,
        sort=search.Sort(q.get("sort", "relevance")),
        page=int(q.get("page", "1")),
    )


async def _captured_sql(url: str, paths: list[str]) -> list[list[tuple[str, tuple[Any, ...]]]]:
    """For each path, the statements (and parameters) the service's search sends to the
    driver: ``find_services`` on a read session of the service's own ``Database``."""
    from sqlalchemy import event

    from citizen_services.persistence.catalogue import CatalogueRepository
    from servicekit.db import Database

    db = Database(url)
    captured: list[tuple[str, tuple[Any, ...]]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        captured.append((statement, tuple(parameters or ())))

    event.listen(db.read_engine.sync_engine, "before_cursor_execute", capture)
    out: list[list[tuple[str, tuple[Any, ...]]]] = []
    try:
        for path in paths:
            captured.clear()
            async with db.read_session() as session:
                await CatalogueRepository(session).search(_query(path))
            out.append(list(captured))
    finally:
        await db.dispose()
    return out


async def _asyncpg_latency(
    url: str, statements: list[list[tuple[str, tuple[Any, ...]]]], seconds: float
) -> list[float]:
    """One connection, one search at a time, rotating: each search's statements in turn
    (autocommit, as the service's read engine). Milliseconds per search."""
    import time

    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    for name in ("json", "jsonb"):  # as SQLAlchemy's asyncpg dialect sends them
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=lambda v: v, decoder=lambda v: v, format="text"
        )
    times: list[float] = []
    try:
        deadline = time.perf_counter() + seconds
        i = random.randrange(len(statements))
        while time.perf_counter() < deadline:
            i = (i + 1) % len(statements)
            t0 = time.perf_counter()
            for sql, params in statements[i]:
                await conn.fetch(sql, *params)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        await conn.close()
    return times


def _lua(paths: list[str], etags: dict[str, str] | None = None) -> str:
    entries = ",\n".join(
        "{" + json.dumps(p) + ", " + json.dumps((etags or {}).get(p, "")) + "}" for p in paths
    )
    return f"""
local paths = {{
{entries}
}}
local i = 0
init = function(args)
  i = math.random(#paths)
end
request = function()
  i = i % #paths + 1
  local p = paths[i]
  if p[2] ~= "" then
    return wrk.format("GET", p[1], {{["If-None-Match"] = p[2]}})
  end
  return wrk.format("GET", p[1])
end
"""


def _etags(base: str, paths: list[str]) -> dict[str, str]:
    """Each search's ETag, after checking it answers 200 with items, then 304 to it."""
    tags: dict[str, str] = {}
    for p in paths:
        with urllib.request.urlopen(base + p, timeout=10) as r:
            body = json.loads(r.read())
            if r.status != 200 or not isinstance(body["items"], list):
                raise RuntimeError(f"GET {base}{p}: {r.status}")
            tags[p] = r.headers["ETag"]
        req = urllib.request.Request(base + p, headers={"If-None-Match": tags[p]})
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except urllib.error.HTTPError as e:  # urllib raises on 304
            if e.code == 304:
                continue
        raise RuntimeError(f"GET {base}{p} with If-None-Match did not answer 304")
    return tags


def run() -> dict[str, dict[str, float]]:
    print(
        "\n== Catalogue search (10,000 entries on PostgreSQL, direct vs through the gateway) ==",
        flush=True,
    )
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="mk-bench-search-"))
    results: dict[str, dict[str, float]] = {}
    try:
        with postgres() as admin_url:
            from mkinfra.postgres import drop_database_at

            drop_database_at(admin_url, "bench_search")  # a server given by DATABASE_URL
            url = create_database(admin_url, "bench_search")
            cs_port = free_port()
            env = catalogue_env(cs_port, url)
            procs = Processes(tmp)
            try:
                cs, gw, _creds = procs.catalogue(env, port=cs_port)
                rows = catalogue()
                print(f"  loading {len(rows):,} published entries …", flush=True)
                asyncio.run(_load(url, rows))
                paths = searches()
                tags = _etags(cs, paths)
                if _etags(gw, paths) != tags:
                    raise RuntimeError("the gateway changed the answers' ETags")
                plain, conditional = _lua(paths), _lua(paths, tags)
                print(
                    f"  wrk -t{THREADS} GET {len(paths)} searches, {DURATION}s each "
                    f"measurement, e.g. {paths[0]}",
                    flush=True,
                )
                for base in (cs, gw):  # warm-up: connections, plans, caches
                    run_wrk(
                        wrk,
                        base,
                        {},
                        duration=3,
                        threads=THREADS,
                        connections=CONNECTIONS,
                        script=plain,
                    )
                sides = [("direct", cs), ("gateway", gw)]
                results.update(
                    _alternating(
                        wrk, sides, "", script=plain, threads=THREADS, connections=CONNECTIONS
                    )
                )
                sql = asyncio.run(_captured_sql(url, paths))
                half = max(2, DURATION // 2)
                asyncio.run(_asyncpg_latency(url, sql, 1))  # warm-up
                times = asyncio.run(_asyncpg_latency(url, sql, half))
                results.update(
                    _alternating(wrk, sides, "_latency", script=plain, threads=1, connections=1)
                )
                times += asyncio.run(_asyncpg_latency(url, sql, half))
                results["asyncpg_latency"] = {
                    "ok_rps": len(times) / (2 * half),
                    "p50": _pct(times, 50),
                    "p95": _pct(times, 95),
                    "p99": _pct(times, 99),
                    "errors": 0.0,
                    "socket_errors": 0.0,
                    "statements": sum(len(s) for s in sql) / len(sql),
                }
                results.update(
                    _alternating(
                        wrk,
                        sides,
                        "_304",
                        script=conditional,
                        threads=THREADS,
                        connections=CONNECTIONS,
                    )
                )
            finally:
                procs.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _print(results)
    return results


def _alternating(
    wrk: str, sides: list[tuple[str, str]], suffix: str, **kw: Any
) -> dict[str, dict[str, float]]:
    """Each side measured twice for half the time, alternating (direct, gateway, direct,
    gateway), so a burst of load from elsewhere does not land on one side only; the figures
    are the two halves' means (errors and socket errors: their sums)."""
    half = max(2, DURATION // 2)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in sides}
    for _ in range(2):
        for name, base in sides:
            runs[name].append(run_wrk(wrk, base, {}, duration=half, **kw))
    return {
        name + suffix: {
            k: (
                sum(r[k] for r in rs)
                if k in ("errors", "socket_errors")
                else sum(r[k] for r in rs) / len(rs)
            )
            for k in rs[0]
        }
        for name, rs in runs.items()
    }


def _pct(values: list[float], p: float) -> float:
    from bench._infra import percentile

    return percentile(values, p)


def _print(r: dict[str, dict[str, float]]) -> None:
    print(f"  {'':<40}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    rows = [
        (f"search, {CONNECTIONS} connections", ""),
        ("search, 1 connection", "_latency"),
        (f"If-None-Match → 304, {CONNECTIONS} conns", "_304"),
    ]
    for label, suffix in rows:
        for name in ("direct", "gateway"):
            m = r[name + suffix]  # req/s: 2xx/3xx answers only
            print(
                f"  {label + ' (' + name + ')':<40}{m['ok_rps']:>8.0f}{m['p50']:>9.2f}"
                f"{m['p95']:>9.2f}{m['p99']:>9.2f}"
            )
        if suffix == "_latency":
            m = r["asyncpg_latency"]
            print(
                f"  {'same SQL via asyncpg, 1 connection':<40}{m['ok_rps']:>8.0f}"
                f"{m['p50']:>9.2f}{m['p95']:>9.2f}{m['p99']:>9.2f}"
                f"   ({m['statements']:.1f} statements a search)"
            )
    ratio = r["gateway"]["ok_rps"] / r["direct"]["ok_rps"]
    lat = r["gateway_latency"]
    p95 = lat["p95"]
    # A fast refusal (429, 5xx) or an unanswered request would flatter the percentiles.
    met = p95 <= GOAL_P95_MS and lat["errors"] == 0 and lat["socket_errors"] == 0
    print(f"  gateway / direct throughput {ratio:.2f}x")
    _report.goal(
        "search",
        f"search p95 through the gateway (1 conn.) <= {GOAL_P95_MS:.0f} ms",
        f"{p95:.1f} ms",
        met,
    )
    direct, sql = r["direct_latency"], r["asyncpg_latency"]
    x = direct["p95"] / sql["p95"]
    _report.goal(
        "search",
        f"search p95 (direct, 1 conn.) <= {GOAL_SQL_RATIO:.0f}x its SQL via asyncpg",
        f"{x:.2f}x ({direct['p95']:.1f} / {sql['p95']:.1f} ms)",
        x <= GOAL_SQL_RATIO and direct["errors"] == 0 and direct["socket_errors"] == 0,
    )
    errors = sum(m["errors"] for m in r.values())
    if errors:
        print(f"  non-2xx/3xx responses: {errors:.0f}")
    sockets = sum(m["socket_errors"] for m in r.values())
    if sockets:
        print(f"  socket errors (connect/read/write/timeout): {sockets:.0f}")
