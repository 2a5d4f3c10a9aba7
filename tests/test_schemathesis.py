"""Property-based API conformance: schemathesis against the gateway's aggregated OpenAPI.

Every operation ``/openapi.json`` publishes is exercised through the gateway as a member of
staff (``STAFF_TOKEN``), with generated valid (positive) and invalid (negative) requests.
Operations whose ``x-roles`` leave staff out but let an admin in run once more as an admin
(``ADMIN_TOKEN``), so their own validation and handlers are reached too. GOV.UK Notify's
``/v2`` operations (security ``notifyJwt``) are called with a fresh Notify JWT of a test key
each time (nothing is sent; ``iat`` must be within 30 seconds). Path parameters
are generated, and also drawn from the ids of resources the run created (the ``id`` of a
2xx answer to ``POST <collection>`` feeds ``<collection>/{param}``), so lookups do not all
end in 404.

No response may be a 5xx, and every response must be one the document promises: a
documented status code and content type, documented headers, a body matching its schema.
Invalid data must not be accepted with a 2xx.

Bounded and reproducible: 25 to 50 examples per operation, mode and caller (see
MAX_EXAMPLES; 5 for a caller the operation's roles refuse), no deadline, derandomized
generation, no example database. The fuzzing runs in SHARDS child processes (this file is
their script), each with its share of the resources: the platform serves from this
process's event loop, and generating requests in this process would compete with it for
the interpreter.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import hypothesis
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning, Unsatisfiable
from schemathesis import APIOperation, BaseSchema
from schemathesis.core.result import Err
from schemathesis.specs.openapi import checks as openapi_checks

if TYPE_CHECKING:
    from .conftest import Platform

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(1500),
]

#: Examples per operation, mode and caller: 50, fewer (never under 25) when the document has
#: so many operations that 50 each would not fit REQUEST_BUDGET.
MAX_EXAMPLES, MIN_EXAMPLES, REQUEST_BUDGET = 50, 25, 3000
#: Examples where the caller's roles are not among the operation's ``x-roles``: every request
#: ends in 401/403, which a few show as well as many.
REFUSED_EXAMPLES = 5
#: Child processes fuzzing at once (each a share of the operations), and how long one may take
#: (bounded by count above; the time is only a backstop: ~70-130 s here, over 480 s once at a
#: load average of 17 on these 2 cores).
SHARDS, CHILD_TIMEOUT = 2, 1200.0
METHODS = ("get", "put", "post", "delete", "patch")
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
MODES = (POSITIVE, NEGATIVE)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]
SETTINGS = hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
)
#: Ids kept per path parameter (the first ones created).
KNOWN_IDS = 3

Caller = tuple[str, frozenset[str], dict[str, str]]  # name, roles, headers
NOTIFY_SCHEME = "notifyJwt"


def notify_headers(api_key: str) -> dict[str, str]:
    """A fresh Notify JWT: ``iss`` the service id, ``iat`` now, signed with the key's secret
    (a Notify key ends ``{service id}-{secret}``, 36 characters each)."""
    service_id, secret = api_key[-73:-37], api_key[-36:]
    token = jwt.encode({"iss": service_id, "iat": int(time.time())}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def is_notify(operation: APIOperation) -> bool:
    return any(
        NOTIFY_SCHEME in requirement for requirement in operation.definition.raw.get("security", ())
    )


def load(document: dict[str, Any]) -> dict[schemathesis.GenerationMode, BaseSchema]:
    """The document for each generation mode: positive requests carry only the caller's
    credentials; negative ones may add generated security parameters (an API key, a second
    credential), which must be refused with 401."""
    return {
        mode: schemathesis.openapi.from_dict(
            document,
            config=schemathesis.Config.from_dict(
                {"generation": {"with-security-parameters": mode is NEGATIVE}}
            ),
        )
        for mode in MODES
    }


def collections_of(document: dict[str, Any]) -> dict[str, str]:
    """``{collection path: parameter}`` for each ``<collection>/{parameter}`` path: the id
    in a 2xx answer to ``POST <collection>`` is a value for ``parameter``."""
    found: dict[str, str] = {}
    for path in document["paths"]:
        matched = re.fullmatch(r"(/.+)/\{([^}/]+)\}", path)
        if matched and "{" not in matched.group(1):
            found.setdefault(matched.group(1), matched.group(2))
    return found


def roles_of(operation: APIOperation) -> frozenset[str]:
    return frozenset(operation.definition.raw.get("x-roles", ()))


def shards_of(document: dict[str, Any], count: int) -> dict[str, int]:
    """``{path: shard}``: the paths of one resource (``/api/v1/<resource>...``) stay together,
    so that ids created by one operation serve the others; shards get about as many
    operations each, the same every time."""
    groups: dict[str, list[str]] = {}
    for path in document["paths"]:
        groups.setdefault("/".join(re.split(r"[/.]", path)[:4]), []).append(path)
    sizes = [0] * count
    shards: dict[str, int] = {}
    for _, paths in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        shard = sizes.index(min(sizes))
        sizes[shard] += len(paths)
        shards.update(dict.fromkeys(paths, shard))
    return shards


def fuzz(
    document: dict[str, Any],
    base_url: str,
    callers: list[Caller],
    *,
    shard: int = 0,
    shards: int = 1,
    notify_key: str | None = None,
) -> dict[str, Any]:
    """Run every operation of ``document`` (of this ``shard``) against ``base_url`` per
    generation mode, as the first caller and as each further caller for the operations the
    first one's roles do not reach. Returns the runs (operation, caller, mode, statuses
    seen) and the failures."""
    schemas = load(document)
    shard_of = shards_of(document, shards)
    collections = collections_of(document)
    plan: list[tuple[schemathesis.GenerationMode, APIOperation, Caller]] = []
    for mode, schema in schemas.items():
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()
            operation = result.ok()
            roles = roles_of(operation)
            plan += [
                (mode, operation, caller)
                for n, caller in enumerate(callers)
                if n == 0 or (roles and not roles & callers[0][1] and roles & caller[1])
            ]
    examples = max(MIN_EXAMPLES, min(MAX_EXAMPLES, REQUEST_BUDGET // len(plan)))
    plan = [step for step in plan if shard_of[step[1].path] == shard]

    known: dict[str, list[str]] = {}
    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    started = time.monotonic()
    for mode, operation, (caller, caller_roles, headers) in plan:
        roles = roles_of(operation)
        allowed = not roles or bool(roles & caller_roles)
        settings = hypothesis.settings(
            SETTINGS, max_examples=examples if allowed else REFUSED_EXAMPLES
        )
        names = [p.name for p in operation.path_parameters]
        fixed = (
            [
                dict(zip(names, values, strict=True))
                for values in itertools.product(*(known.get(name, []) for name in names))
            ]
            if names
            else []
        )
        creates = collections.get(operation.path) if operation.method == "post" else None
        strategy = st.one_of(
            operation.as_strategy(generation_mode=mode),
            *(
                operation.as_strategy(generation_mode=mode, path_parameters=values)
                for values in fixed
            ),
        )
        statuses: Counter[int] = Counter()

        @settings
        @hypothesis.given(case=strategy)
        def run(case: schemathesis.Case) -> None:  # called at once: closures are current
            sent = notify_headers(notify_key) if notify_key and is_notify(operation) else headers
            response = case.call_and_validate(
                base_url=base_url, headers=sent, checks=CHECKS, timeout=10
            )
            statuses[response.status_code] += 1
            if creates and 200 <= response.status_code < 300:  # a new `creates` id?
                with_id = known.setdefault(creates, [])
                body = (
                    response.json()
                    if "json" in (response.headers.get("content-type") or [""])[0]
                    else None
                )
                if isinstance(body, dict) and body.get("id") and len(with_id) < KNOWN_IDS:
                    with_id.append(str(body["id"]))

        label = f"{operation.label} as {caller} [{mode.value}]"
        impossible = False
        try:
            run()
        except Unsatisfiable:
            # No invalid request exists for an operation whose every input is unconstrained
            # (``GET /hsds``): recorded, and a failure in positive mode.
            impossible = mode is NEGATIVE
            if not impossible:
                failures.append(f"{label}: no request could be generated")
        except (Exception, BaseExceptionGroup) as exc:  # FailureGroup: BaseExceptionGroup
            failures.append(f"{label}:\n{exc}")
        runs.append(
            {
                "label": label,
                "mode": mode.value,
                "allowed": allowed,
                "no_invalid_input": impossible,
                "statuses": dict(sorted(statuses.items())),
            }
        )
    return {
        "runs": runs,
        "failures": failures,
        "examples": examples,
        "elapsed": time.monotonic() - started,
    }


async def test_every_operation_conforms_to_the_aggregated_openapi(
    platform: Platform, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert "x-unavailable-services" not in document["info"], document["info"]
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }
    assert any(op.get("x-roles") and "staff" not in op["x-roles"] for op in operations.values()), (
        "no admin-only operation in the document"
    )
    assert any(
        NOTIFY_SCHEME in requirement
        for op in operations.values()
        for requirement in op.get("security", ())
    ), "/v2 is not documented"

    from notifications.devcreds import ensure_dev_notify  # not in the fuzzing children

    notify_key = (
        await ensure_dev_notify(platform.apps["notifications"].state.runtime.database.url)
    )["NOTIFY_TEST_API_KEY"]
    job = tmp_path / "schemathesis-job.json"
    job.write_text(
        json.dumps(
            {
                "document": document,
                "base_url": platform.gateway_url,
                "notify_key": notify_key,
                "callers": [
                    ["staff", ["staff"], platform.bearer("STAFF_TOKEN")],
                    ["admin", ["admin", "staff"], platform.bearer("ADMIN_TOKEN")],
                ],
            }
        )
    )
    started = time.monotonic()
    done = await asyncio.gather(
        *(fuzz_in_child(job, tmp_path, shard) for shard in range(SHARDS)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    for outcome in done:  # each child finished (or was killed) before any is reported
        if isinstance(outcome, BaseException):
            raise outcome
    outcomes = [outcome for outcome in done if isinstance(outcome, dict)]
    runs = [run for outcome in outcomes for run in outcome["runs"]]
    failures = [failure for outcome in outcomes for failure in outcome["failures"]]
    per_shard = ", ".join(f"{outcome['elapsed']:.1f} s" for outcome in outcomes)
    print(
        f"\nschemathesis: {len(operations)} operations, {len(runs)} runs of "
        f"{outcomes[0]['examples']} examples in {elapsed:.1f} s ({per_shard} per shard)"
    )
    for run in runs:
        print(f"  {run['label']}: {run['statuses']}")
    unfuzzable = [run["label"] for run in runs if run["no_invalid_input"]]
    assert len(unfuzzable) <= 2, f"no invalid input could be generated for {unfuzzable}"
    tested = Counter(run["label"].split(" as ")[0] for run in runs)
    assert {label for label, count in tested.items() if count >= len(MODES)} == set(operations)
    assert not failures, f"{len(failures)} of {len(runs)} runs failed:\n\n" + "\n\n".join(failures)
    # Not vacuous: most operations a caller may use answered it 2xx at least once (were the
    # credentials refused, everything would conform as 401s).
    allowed = [run for run in runs if run["mode"] == POSITIVE.value and run["allowed"]]
    succeeded = [run for run in allowed if any(200 <= int(s) < 300 for s in run["statuses"])]
    assert len(succeeded) >= len(allowed) // 2, (
        f"only {len(succeeded)} of {len(allowed)} operations ever succeeded"
    )


async def fuzz_in_child(job: Path, tmp_path: Path, shard: int) -> dict[str, Any]:
    """Run :func:`fuzz` for one shard in a child process; its outcome."""
    result, log = tmp_path / f"schemathesis-{shard}.json", tmp_path / f"schemathesis-{shard}.log"
    with log.open("wb") as out:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            str(job),
            str(result),
            str(shard),
            str(SHARDS),
            stdout=out,
            stderr=out,
        )
        try:
            await asyncio.wait_for(child.wait(), timeout=CHILD_TIMEOUT)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
    assert child.returncode == 0, log.read_text()[-5000:]
    outcome: dict[str, Any] = json.loads(result.read_text())
    return outcome


def main(job_file: str, result_file: str, shard: str, shards: str) -> None:
    """The child process: fuzz one shard as ``job_file`` says, write the outcome to
    ``result_file``."""
    # schemathesis' own strategies draw from `random`; not this test's concern
    warnings.simplefilter("ignore", HypothesisDeprecationWarning)
    job = json.loads(Path(job_file).read_text())
    callers: list[Caller] = [
        (name, frozenset(roles), headers) for name, roles, headers in job["callers"]
    ]
    outcome = fuzz(
        job["document"],
        job["base_url"],
        callers,
        shard=int(shard),
        shards=int(shards),
        notify_key=job.get("notify_key"),
    )
    Path(result_file).write_text(json.dumps(outcome))


if __name__ == "__main__":
    main(*sys.argv[1:5])
