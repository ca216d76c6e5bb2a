"""What describes an upstream API: `VendorApi`, and the helpers its module declares columns with.

Each API module (`service_desk.py`, `incident_management.py`) only *describes* its API, as a
data table: its resources, endpoints, declared columns and descriptions. `dlt_source.py` turns such
a description into a dlt source; adding an API is one such module and one line in `__init__.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from svcdesk_dagster.sources.contract import DEFAULT_PRIMARY_KEY

if TYPE_CHECKING:  # importing dlt's rest_api loads the HTTP stack: not when the code location loads
    from dlt.sources.rest_api.typing import EndpointResource

PAGINATOR_TYPE = "vendor_offset"
"""The shift-proof paginator's name in rest_api's registry (`paginator.py` registers it)."""

PAGE_LIMIT = 100
"""Records per request: the most the vendor allows (a larger one is a 400)."""

PAGINATOR = {"type": PAGINATOR_TYPE, "limit": PAGE_LIMIT}
"""Offset paging at the largest page, with a paginator that survives a changing `total`."""

RESOURCE_DEFAULTS: dict[str, Any] = {"primary_key": DEFAULT_PRIMARY_KEY, "write_disposition": "merge"}


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
    incremental_filters: dict[str, str] = field(default_factory=dict)
    """Resources read incrementally, each with the query parameter that asks the vendor for the
    records changed since a moment (`updated_since`): its window (`window.py`)."""

    @property
    def resource_names(self) -> tuple[str, ...]:
        return tuple(str(resource["name"]) for resource in self.resources)

    def resource(self, resource_name: str) -> EndpointResource:
        """The description of the resource called `resource_name`."""
        return next(r for r in self.resources if r["name"] == resource_name)

    def endpoint_path(self, resource_name: str) -> str:
        """The path `resource_name` is read from, e.g. `/v1/tickets`."""
        return str(self.resource(resource_name)["endpoint"]["path"])


def column(data_type: str, nullable: bool, description: str, **hints: Any) -> dict[str, Any]:
    """A declared column: its dlt type, nullability and meaning, from the contract's field tables
    (docs/contract.md). The description reaches dlt's schema and the Dagster catalog."""
    return {"data_type": data_type, "nullable": nullable, "description": description, **hints}


def columns(**declared: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Declared columns keyed by name, each also carrying its name (dlt's nested hints need it)."""
    return {name: {"name": name, **spec} for name, spec in declared.items()}
