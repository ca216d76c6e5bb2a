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

from svcdesk_dagster.sources.api import VendorApi
from svcdesk_dagster.sources.contract import (
    VARIANT_MARKER,
    Columns,
    DeclaredTable,
    declared_tables,
)
from svcdesk_dagster.sources.errors import causes, vendor_message
from svcdesk_dagster.sources.http import redact
from svcdesk_dagster.sources.incident_management import INCIDENT_MANAGEMENT
from svcdesk_dagster.sources.read import ApiRead, open_read
from svcdesk_dagster.sources.service_desk import SERVICE_DESK
from svcdesk_dagster.sources.window import iso_timestamp

APIS: tuple[VendorApi, ...] = (SERVICE_DESK, INCIDENT_MANAGEMENT)
"""Every API the code location syncs: adding one is its module and one entry here."""

__all__ = [
    "APIS",
    "INCIDENT_MANAGEMENT",
    "SERVICE_DESK",
    "VARIANT_MARKER",
    "ApiRead",
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
