"""The sources: what the upstream APIs are and how one is read. Code outside this package imports
from here only.

- `api.py` describes an API (`VendorApi`); `service_desk.py` and `incident_management.py` are the
  two descriptions, as data tables.
- `read.py` is the door: `open_read(api, full_refresh=...)` resolves the settings and gives the
  session, the response tally and the dlt source of one read.
- Underneath: `dlt_source.py` (the builder), `paginator.py` (paging), `window.py` (incremental
  windows), `contract.py` (declared columns and the type guard), `http.py` (the session, retries
  and redaction), `errors.py` (failures explained), `logs.py` (log filters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from svcdesk_dagster.sources.api import VendorApi
from svcdesk_dagster.sources.contract import (
    VARIANT_MARKER,
    Columns,
    DeclaredTable,
    declared_tables,
)
from svcdesk_dagster.sources.incident_management import INCIDENT_MANAGEMENT
from svcdesk_dagster.sources.redaction import redact
from svcdesk_dagster.sources.service_desk import SERVICE_DESK
from svcdesk_dagster.sources.window import iso_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterator

    import requests

    from svcdesk_dagster.sources.read import ApiRead

APIS: tuple[VendorApi, ...] = (SERVICE_DESK, INCIDENT_MANAGEMENT)
"""Every API the code location syncs: adding one is its module and one entry here."""


# What a run or a tick needs, imported when first called: the HTTP stack (requests, urllib3, dlt's
# rest_api) then loads in the run, not each time the code location loads.


def open_read(api: VendorApi, **options: Any) -> ApiRead:
    """A read of `api` with the configuration in force now (`read.open_read`)."""
    from svcdesk_dagster.sources.read import open_read as open_read_now

    return open_read_now(api, **options)


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and the chain of exceptions behind it (`errors.causes`)."""
    from svcdesk_dagster.sources.errors import causes as chain

    return chain(error)


def vendor_message(response: requests.Response) -> str:
    """What the vendor's error body says, ready to quote (`errors.vendor_message`)."""
    from svcdesk_dagster.sources.errors import vendor_message as said

    return said(response)

__all__ = [
    "APIS",
    "INCIDENT_MANAGEMENT",
    "SERVICE_DESK",
    "VARIANT_MARKER",
    "Columns",
    "DeclaredTable",
    "VendorApi",
    "causes",
    "declared_tables",
    "iso_timestamp",
    "open_read",
    "redact",
    "vendor_message",
]
