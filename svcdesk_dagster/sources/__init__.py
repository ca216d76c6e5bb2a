"""dlt sources for the upstream APIs: one module per API, one shared builder, session and paginator."""

from svcdesk_dagster.sources.incident_management import INCIDENT_MANAGEMENT
from svcdesk_dagster.sources.rest import VendorApi, build_rest_source
from svcdesk_dagster.sources.service_desk import SERVICE_DESK

APIS: tuple[VendorApi, ...] = (SERVICE_DESK, INCIDENT_MANAGEMENT)

__all__ = ["APIS", "INCIDENT_MANAGEMENT", "SERVICE_DESK", "VendorApi", "build_rest_source"]
