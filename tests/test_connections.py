"""The provider's connection types, as Airflow's API server reads them, and each hook's Test button against the
sandbox: good credentials pass, wrong ones fail with a message that names the service and holds no secret."""

from __future__ import annotations

import json

import pytest
import requests

from clever_attendance.hooks.clever import CleverHook
from clever_attendance.hooks.safety_shield import SafetyShieldHook


def test_the_api_server_knows_both_connection_types_and_their_fields():
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    meta = {m.connection_type: m for m in HookMetaService.hook_meta_data()}
    clever, shield = meta["clever"], meta["safety_shield"]
    assert (clever.hook_name, clever.hook_class_name) == ("Clever", "clever_attendance.hooks.clever.CleverHook")
    assert (shield.hook_name, shield.hook_class_name) == (
        "Safety Shield", "clever_attendance.hooks.safety_shield.SafetyShieldHook")
    fields = clever.standard_fields
    assert (fields.host.title, fields.login.title, fields.password.title) == (
        "API base URL", "Client id", "Client secret or district token")
    assert fields.port.hidden and not fields.login.hidden
    assert shield.standard_fields.password.title == "API key" and shield.standard_fields.login.hidden
    assert {"oauth_url", "timeout", "max_concurrency", "requests_per_minute", "max_retries", "backoff_seconds",
            "verify"} == set(clever.extra_fields)
    assert {"timeout", "max_retries", "backoff_seconds", "poll_seconds", "max_bytes", "max_rows"} == \
        set(shield.extra_fields)
    assert shield.extra_fields["max_rows"]["schema"]["type"] == ["integer", "null"]


def test_clever_test_connection_with_app_credentials_and_with_a_district_token(sandbox, districts, clever_conn):
    assert CleverHook(clever_conn_id=clever_conn(sandbox)).test_connection() == (
        True, "Clever accepted the app's client id and secret: 3 district(s) share data with the app")
    token = requests.get(sandbox["clever_url"] + "/oauth/tokens", timeout=10,
                         params={"owner_type": "district", "district": districts["tiny"].id},
                         auth=(sandbox["clever_client_id"], sandbox["clever_client_secret"])
                         ).json()["data"][0]["access_token"]
    ok, message = CleverHook(clever_conn_id=clever_conn(sandbox, mode=token)).test_connection()
    assert (ok, message) == (True, f"Clever accepted the district token: it sees {districts['tiny'].spec.name}")
    assert token not in message


@pytest.mark.parametrize("mode", ["app", "a-token-clever-refuses"])
def test_clever_test_connection_with_wrong_credentials_names_clever_and_no_secret(sandbox, clever_conn, mode):
    wrong = {**sandbox, "clever_client_secret": "wrong-secret-1234"}
    conn_id = clever_conn(wrong, mode=mode)
    ok, message = CleverHook(clever_conn_id=conn_id).test_connection()
    assert not ok
    assert message.startswith("Clever")
    assert "wrong-secret-1234" not in message and "a-token-clever-refuses" not in message
    if mode == "app":
        assert message == ("Clever refused the app's client id and secret (HTTP 401) at "
                           f"{sandbox['clever_url']}/oauth/tokens")
    else:
        assert message == f"Clever connection {conn_id!r}: credentials refused during GET /v3.1/districts: " \
                          "HTTP 401: token refused"


def safety_shield_conn(monkeypatch, sandbox: dict, api_key: str, conn_type: str = "safety_shield") -> str:
    monkeypatch.setenv("AIRFLOW_CONN_SS_PROBE", json.dumps({"conn_type": conn_type, "host": sandbox["upload_url"],
                                                            "password": api_key}))
    return "ss_probe"


def test_safety_shield_test_connection(sandbox, monkeypatch):
    good = safety_shield_conn(monkeypatch, sandbox, sandbox["upload_api_key"])
    assert SafetyShieldHook(safety_shield_conn_id=good).test_connection() == (
        True, f"Safety Shield accepted the API key at {sandbox['upload_url']}")
    wrong = safety_shield_conn(monkeypatch, sandbox, "not-the-key-5678")
    ok, message = SafetyShieldHook(safety_shield_conn_id=wrong).test_connection()
    assert (ok, message) == (False, f"Safety Shield refused the API key (HTTP 401) at {sandbox['upload_url']}")


def test_the_test_button_path_and_old_http_connections(sandbox, monkeypatch):
    """Airflow's Connection.test_connection, what the API server's Test button calls: it finds the hook by
    connection type; an `http` connection with the same fields still drives both hooks."""
    from airflow.models.connection import Connection

    clever = Connection(conn_id="probe", conn_type="clever", host=sandbox["clever_url"],
                        login=sandbox["clever_client_id"], password=sandbox["clever_client_secret"],
                        extra=json.dumps({"oauth_url": sandbox["clever_url"]}))
    monkeypatch.setenv("AIRFLOW_CONN_PROBE", clever.get_uri())
    assert clever.test_connection()[0] is True
    old = safety_shield_conn(monkeypatch, sandbox, sandbox["upload_api_key"], conn_type="http")
    assert SafetyShieldHook(safety_shield_conn_id=old).test_connection()[0] is True
