"""The measured work of plain requests, of the bare dlt pipeline and of the seed configuration of
dlt's `rest_api_source` (the vendor-paced peer): `python -m bench.probes ...`.

`bench.run` starts each probe in a fresh interpreter, so its imports and memory are its own. A
probe times only its work (the parent times the whole process) and writes one JSON object to
`--out`. The connection comes from the API settings (README, Configuration) the parent sets; the API
key is read from there and never written anywhere.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

PAGE_LIMIT = 100
"""The vendor's largest page, the one the project's source uses too."""


def memory_mb(field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of this process, in MB (10^6 bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"/proc/self/status has no {field}")


def plain_requests() -> dict[str, Any]:
    """Every page of the plain ticket listing with one `requests.Session`, each body parsed.

    The fastest any client can read the listing from Python: no paging logic beyond `offset +=
    limit`, no normalisation, no storage. Only `requests` is imported, so its RSS is the plain read's
    too. Counting tags costs ~1% and gives the run a cross-check of the child table.
    """
    import requests

    url = os.environ["SOURCES__SERVICE_DESK__BASE_URL"].rstrip("/") + "/v1/tickets"
    api_key = os.environ["SOURCES__SERVICE_DESK__API_KEY"]
    session = requests.Session()
    rss_before = memory_mb("VmRSS")
    rows = tags = pages = 0
    first_total = None
    start = time.perf_counter()
    while True:
        offset = pages * PAGE_LIMIT
        params = {"offset": offset, "limit": PAGE_LIMIT, "api_key": api_key}
        response = session.get(url, params=params, timeout=60)
        if response.status_code != 200:  # the URL would show the key: name only the page
            raise RuntimeError(f"plain requests: HTTP {response.status_code} at offset {offset}")
        body = response.json()
        pages += 1
        first_total = body["total"] if first_total is None else first_total
        data = body["data"]
        rows += len(data)
        tags += sum(len(record["tags"]) for record in data)
        if len(data) < PAGE_LIMIT:
            break
    work = time.perf_counter() - start
    return {
        "work_s": round(work, 3),
        "rows": rows,
        "tag_rows": tags,
        "pages": pages,
        "listing_total": first_total,
        "rss_after_imports_mb": round(rss_before, 1),
    }


def import_project_sources() -> Any:
    """`svcdesk_dagster.sources` without running `svcdesk_dagster/__init__.py`.

    The package's `__init__` imports the Dagster definitions (for `dagster -m svcdesk_dagster`);
    the sources need only dlt. A bare dlt pipeline measured with Dagster loaded would carry
    Dagster's import time and ~40 MB of RSS, so the package is registered unexecuted and only
    its `sources` subpackage is imported, exactly as the code location imports it.
    """
    spec = importlib.util.find_spec("svcdesk_dagster")
    if spec is None:
        raise RuntimeError("svcdesk_dagster is not installed in this interpreter")
    sys.modules.setdefault("svcdesk_dagster", importlib.util.module_from_spec(spec))
    return importlib.import_module("svcdesk_dagster.sources")


def bare_dlt(loader_file_format: str | None) -> dict[str, Any]:
    """The project's own ticket source (full read) in a plain `dlt.pipeline(...).run(...)`.

    What dlt alone costs for the same reads: the project's source, session and paginator, dlt's
    defaults for everything else (DuckDB destination, merge disposition from the source).
    `loader_file_format=None` is dlt's default (`insert_values` for DuckDB).
    """
    import dlt

    sources = import_project_sources()
    from bench.dlt_trace import summarise_trace

    api = sources.SERVICE_DESK
    source = sources.open_read(api, full_refresh=True).dlt_source()
    pipeline = dlt.pipeline(
        pipeline_name="bench_bare_dlt",
        destination=dlt.destinations.duckdb(
            credentials=os.environ["DESTINATION__DUCKDB__CREDENTIALS"]
        ),
        dataset_name=api.name,
    )
    options = {"loader_file_format": loader_file_format} if loader_file_format else {}
    rss_before = memory_mb("VmRSS")
    start = time.perf_counter()
    pipeline.run(source, **options)
    work = time.perf_counter() - start
    return {
        "work_s": round(work, 3),
        "dlt": summarise_trace(pipeline.last_trace),
        "loader_file_format": loader_file_format or "insert_values (dlt default)",
        "dagster_imported": "dagster" in sys.modules,
        "rss_after_imports_mb": round(rss_before, 1),
    }


def seed_rest_api() -> dict[str, Any]:
    """The peer: the seed configuration of dlt's `rest_api_source` for tickets, as a user of dlt
    alone would run it (offset paginator, limit 100, one page after another, no rate limiting),
    in a plain pipeline into DuckDB. The resource is named `tickets` (the seed says
    `service_desk_tickets`) so that its table is checked like the project's."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {
            "base_url": os.environ["SOURCES__SERVICE_DESK__BASE_URL"],
            "auth": {
                "type": "api_key",
                "name": "api_key",
                "api_key": os.environ["SOURCES__SERVICE_DESK__API_KEY"],
                "location": "query",
            },
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [{
            "name": "tickets",
            "endpoint": {
                "path": "/v1/tickets",
                "data_selector": "data",
                "paginator": {"type": "offset", "limit": PAGE_LIMIT},
            },
        }],
    }, name="service_desk")
    pipeline = dlt.pipeline(
        pipeline_name="bench_seed_rest_api",
        destination=dlt.destinations.duckdb(
            credentials=os.environ["DESTINATION__DUCKDB__CREDENTIALS"]
        ),
        dataset_name="service_desk",
    )
    start = time.perf_counter()
    pipeline.run(source)
    return {"work_s": round(time.perf_counter() - start, 3)}


PROBES = {"plain-requests": plain_requests, "seed-rest-api": seed_rest_api}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probes", description=__doc__)
    parser.add_argument("probe", choices=(*PROBES, "bare-dlt"))
    parser.add_argument("--out", required=True, type=Path, help="where to write the JSON result")
    parser.add_argument(
        "--loader-file-format", default=None, help="bare-dlt: dlt's loader format (default: dlt's)"
    )
    args = parser.parse_args(argv)
    probe = PROBES.get(args.probe)
    result = probe() if probe is not None else bare_dlt(args.loader_file_format)
    result["peak_rss_self_mb"] = round(memory_mb("VmHWM"), 1)
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
