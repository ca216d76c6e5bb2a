"""The door into the sources: an API and a mode in, everything one read of it needs out.

The assets, the sensor's change check and the benchmark's bare dlt pipeline all start a read here,
so the settings are resolved, the session is built and the source is assembled one way only:

    read = open_read(SERVICE_DESK, full_refresh=False)   # settings checked, nothing sent yet
    pipeline.run(read.dlt_source())                      # the pages, through read.session
    read.tally.count("/v1/tickets")                      # responses counted on the way
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import requests
from dlt.extract.source import DltSource

from svcdesk_dagster.settings import (
    ApiSettings,
    RetrySettings,
    progress_interval_seconds,
    resolve_api_settings,
)
from svcdesk_dagster.sources.api import VendorApi
from svcdesk_dagster.sources.dlt_source import ReadPlan, build_dlt_source
from svcdesk_dagster.sources.errors import Explanation, explain
from svcdesk_dagster.sources.governor import RateGovernor, governor_for
from svcdesk_dagster.sources.http import ResponseTally, build_session
from svcdesk_dagster.sources.logs import install_log_filters
from svcdesk_dagster.sources.progress import Log, ReadProgress
from svcdesk_dagster.sources.redaction import API_KEY_PARAM

LOGGER = logging.getLogger("svcdesk_dagster.sources")
"""Where a read's progress goes when the caller gives no log of its own (the assets give
Dagster's run log)."""


@dataclass
class ApiRead:
    """One read of one API: its settings, the session that calls it, and what it counted."""

    api: VendorApi
    settings: ApiSettings
    full_refresh: bool
    session: requests.Session
    tally: ResponseTally = field(default_factory=ResponseTally)
    governor: RateGovernor | None = None
    log: Log = LOGGER
    progress_interval: float = 10.0

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.settings.api_key,)

    def dlt_source(self) -> DltSource:
        """The dlt source of this read: every resource of the API, through `session`."""
        plan = ReadPlan(self.settings, self.session, self.full_refresh, self.progress)
        return build_dlt_source(self.api, plan)

    def progress(self, resource_name: str, path: str) -> ReadProgress:
        """The progress lines of reading `resource_name` (at `path`), in this read's log."""
        return ReadProgress(
            resource_name, path, self.log, self.progress_interval, self.tally, self.governor
        )

    def first_changes(self, resource_name: str, since: str, limit: int) -> requests.Response:
        """One request: the first `limit` records of `resource_name` changed at or after `since`
        (the resource must be read incrementally). The answer is the caller's to judge."""
        params = {
            "limit": limit,
            self.api.incremental_filters[resource_name]: since,
            API_KEY_PARAM: self.settings.api_key,
        }
        url = f"{self.settings.base_url}{self.api.endpoint_path(resource_name)}"
        return self.session.get(url, params=params)

    def explain(self, error: BaseException) -> Explanation:
        """What a failure of this read means for the person on call, free of the key."""
        return explain(
            error, self.api.name, self.api.title,
            base_url=self.settings.base_url, secrets=self.secrets,
        )

    def close(self) -> None:
        self.session.close()


def open_read(
    api: VendorApi,
    *,
    full_refresh: bool = False,
    http: RetrySettings | None = None,
    log: Log = LOGGER,
) -> ApiRead:
    """A read of `api` with the configuration in force now (`http` replaces the HTTP policy),
    its progress written to `log`.

    Every setting is resolved and checked here, before any request: a missing or bad one raises
    `MissingSettingError` naming it.
    """
    settings = resolve_api_settings(api.name)
    policy = http if http is not None else RetrySettings.from_config()
    interval = progress_interval_seconds()
    install_log_filters()
    tally = ResponseTally()
    governor = governor_for(
        settings.base_url,
        settings.api_key,
        settings.pace.rate_limit_headers,
        settings.pace.requests_per_minute,
    )
    session = build_session(policy, secrets=(settings.api_key,), tally=tally, governor=governor)
    return ApiRead(api, settings, full_refresh, session, tally, governor, log, interval)
