"""The one source builder both upstream APIs go through.

Each API module (`service_desk`, `incident_management`) only *describes* its API: the resources,
endpoints and declared columns, the way the seeds write them. This module turns such a
description into a `rest_api_source` with the seeds' shared parts: the API key in the query string,
`primary_key: id`, `write_disposition: merge`, and the one HTTP session with the seeds' retry
policy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import requests
from dlt.extract.source import DltSource
from dlt.sources.rest_api import rest_api_source
from dlt.sources.rest_api.typing import EndpointResource

from svcdesk_dagster.sources.paginator import PAGINATOR_TYPE
from svcdesk_dagster.sources.settings import ApiSettings

PAGE_LIMIT = 100
"""Records per request: the seeds' limit, and the most the vendor allows (API_CONTRACT.md)."""

PAGINATOR = {"type": PAGINATOR_TYPE, "limit": PAGE_LIMIT}
"""The seeds' `{"type": "offset", "limit": 100}`, with a paginator that survives a changing `total`."""

RESOURCE_DEFAULTS: dict[str, Any] = {"primary_key": "id", "write_disposition": "merge"}


@dataclass(frozen=True)
class VendorApi:
    """What differs between the upstream APIs: their name and their resources.

    `name` is the dlt source name, the config section (`[sources.<name>]`), the DuckDB dataset and
    the Dagster group all at once, so the four can never drift apart.
    """

    name: str
    title: str
    resources: tuple[EndpointResource, ...]
    descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def resource_names(self) -> tuple[str, ...]:
        return tuple(str(resource["name"]) for resource in self.resources)


def build_rest_source(api: VendorApi, settings: ApiSettings, session: requests.Session) -> DltSource:
    """A `rest_api_source` for `api`, calling it at `settings.base_url` through `session`."""
    config = {
        "client": {
            "base_url": settings.base_url,
            "auth": {
                "type": "api_key",
                "name": "api_key",
                "api_key": settings.api_key,
                "location": "query",
            },
            "session": session,
        },
        "resource_defaults": RESOURCE_DEFAULTS,
        # rest_api_source consumes parts of the resource dicts; keep the module-level ones intact.
        "resources": copy.deepcopy(list(api.resources)),
    }
    return rest_api_source(config, name=api.name)  # type: ignore[arg-type]


def column(data_type: str, nullable: bool, **hints: Any) -> dict[str, Any]:
    """A declared column: its dlt type and nullability, from the contract's field tables."""
    return {"data_type": data_type, "nullable": nullable, **hints}


def columns(**declared: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Declared columns keyed by name, each also carrying its name (dlt's nested hints need it)."""
    return {name: {"name": name, **spec} for name, spec in declared.items()}
