"""Adding an API is one module under `sources/` and one entry in `sources.APIS`.

The module below is that module, written as `sources/service_desk.py` is: a data table of the API.
It describes an "on-call catalog" API that serves the incident manager's services under its own
name (the simulator answers it at the incident manager's address). `build_definitions` given it
next to the two real APIs is what the one new entry in `APIS` makes of it: its asset, its checks,
its sync job and schedule, all working, with no other change anywhere.
"""

from __future__ import annotations

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance

from svcdesk_dagster.definitions import build_definitions
from svcdesk_dagster.sources import APIS, VendorApi
from svcdesk_dagster.sources.api import PAGINATOR
from svcdesk_dagster.sources.incident_management import SERVICE_COLUMNS
from svcdesk_dagster_tests.conftest import INCIDENT_MANAGEMENT_KEY, Project
from svcdesk_simulator import Simulator

# -- the module: what a contributor writes --------------------------------------------------------

ON_CALL_CATALOG = VendorApi(
    name="on_call_catalog",
    title="on-call catalog",
    resources=(
        {
            "name": "catalog_services",
            "endpoint": {"path": "/v1/services", "data_selector": "data", "paginator": PAGINATOR},
            "columns": SERVICE_COLUMNS,  # the fields the incident manager documents for services
            "write_disposition": "replace",
        },
    ),
    descriptions={"catalog_services": "The on-call catalog's services, one row per service."},
)

# -- the one line ---------------------------------------------------------------------------------

WITH_THE_THIRD_API = (*APIS, ON_CALL_CATALOG)


@pytest.fixture
def catalog_settings(
    project: Project, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> Project:
    monkeypatch.setenv("SOURCES__ON_CALL_CATALOG__BASE_URL", simulator.incident_management_url)
    monkeypatch.setenv("SOURCES__ON_CALL_CATALOG__API_KEY", INCIDENT_MANAGEMENT_KEY)
    return project


def test_a_third_api_gets_its_asset_checks_job_and_schedule() -> None:
    defs = build_definitions(WITH_THE_THIRD_API)
    graph = defs.resolve_asset_graph()
    assert AssetKey("catalog_services") in graph.get_all_asset_keys()
    assert {check.name for check in graph.asset_check_keys if check.asset_key.path == [
        "catalog_services"
    ]} == {"schema_contract", "merge_key_unique"}
    assert defs.resolve_job_def("on_call_catalog_sync") is not None
    assert defs.resolve_schedule_def("on_call_catalog_schedule").job_name == "on_call_catalog_sync"
    assert set(defs.resolve_job_def("full_refresh").asset_layer.selected_asset_keys) >= {
        AssetKey("catalog_services"), AssetKey("tickets")
    }


def test_a_third_api_syncs_and_passes_its_checks(
    catalog_settings: Project, simulator: Simulator
) -> None:
    defs = build_definitions(WITH_THE_THIRD_API)
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("on_call_catalog_sync").execute_in_process(instance=instance)
    assert result.success
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert checks == {
        ("catalog_services", "schema_contract"): True,
        ("catalog_services", "merge_key_unique"): True,
    }
    with duckdb.connect(str(catalog_settings.duckdb_file), read_only=True) as con:
        ids = {row[0] for row in con.execute(
            "SELECT id FROM on_call_catalog.catalog_services"
        ).fetchall()}
    assert ids == {service["id"] for service in simulator.live_services()}
