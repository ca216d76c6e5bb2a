"""svcdesk_dagster: service-desk tickets and on-call incidents and services, kept in an analytics
database by dlt, orchestrated by Dagster.

`defs` is re-exported so that `dagster ... -m svcdesk_dagster` finds the code location.
"""

from svcdesk_dagster.definitions import defs

__all__ = ["defs"]
