"""What Airflow learns of this package as a provider (entry point `apache_airflow_provider`): its two
connection types, with the Connections form's labels, placeholders and extra fields, declared here so that
the API server shows them without importing the hooks. The extras' defaults are the hooks' defaults."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from clever_attendance.settings import CLEVER_CONN_TYPE, SAFETY_SHIELD_CONN_TYPE

PACKAGE = "clever-attendance"  # the distribution, as pyproject.toml names it


@dataclass(frozen=True)
class Extra:
    """One setting a hook reads from its connection's extra."""

    default: Any
    label: str
    description: str


EXTRAS: dict[str, dict[str, Extra]] = {
    CLEVER_CONN_TYPE: {
        "oauth_url": Extra("https://clever.com", "OAuth URL",
                           "Where the district token is looked up with the client id and secret."),
        "timeout": Extra(60.0, "Timeout (s)", "Seconds to wait for one answer."),
        "max_concurrency": Extra(5, "Schools read at once", "Parallel attendance reads of one district."),
        "requests_per_minute": Extra(1140.0, "Requests per minute",
                                     "The hook's own pace: 95% of Clever's 1200 per token."),
        "max_retries": Extra(6, "Retries per request", "Of a 5xx, timeout or dropped connection, with backoff."),
        "backoff_seconds": Extra(1.0, "First backoff (s)", "Doubled per retry, at most a minute, with jitter."),
        "verify": Extra(True, "Verify TLS", "Check the server's certificate."),
    },
    SAFETY_SHIELD_CONN_TYPE: {
        "timeout": Extra(120.0, "Timeout (s)", "Seconds to wait for one answer."),
        "max_retries": Extra(6, "Retries per request", "Of a 429 or 5xx, after Retry-After or with backoff."),
        "backoff_seconds": Extra(1.0, "First backoff (s)", "Doubled per retry, at most a minute, with jitter."),
        "poll_seconds": Extra(1.0, "Import poll (s)", "How often the import's status is read."),
        "max_bytes": Extra(25_000_000, "File limit (bytes)", "Files are split under it."),
        "max_rows": Extra(200_000, "File limit (rows)", "Files are split under it."),
    },
}

FIELD_BEHAVIOUR: dict[str, dict] = {
    CLEVER_CONN_TYPE: {
        "hidden-fields": ["schema", "port"],
        "relabeling": {"host": "API base URL", "login": "Client id", "password": "Client secret or district token"},
        "placeholders": {"host": "https://api.clever.com",
                         "login": "the Clever app's client id (leave empty when the password is a district token)",
                         "password": "the app's client secret, or a district token"},
    },
    SAFETY_SHIELD_CONN_TYPE: {
        "hidden-fields": ["schema", "port", "login"],
        "relabeling": {"host": "API base URL", "password": "API key"},
        "placeholders": {"host": "https://safety-shield.example.org",
                         "password": "the district's dataFileUpload API key"},
    },
}

HOOKS = {CLEVER_CONN_TYPE: ("clever_attendance.hooks.clever.CleverHook", "Clever"),
         SAFETY_SHIELD_CONN_TYPE: ("clever_attendance.hooks.safety_shield.SafetyShieldHook", "Safety Shield")}
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def read_extras(conn_type: str, extra: dict) -> dict[str, Any]:
    """The hook's settings from a connection's extra: each declared one, typed, its default where unset."""
    values = {}
    for name, spec in EXTRAS[conn_type].items():
        value = extra.get(name)
        if value is None or value == "":
            value = spec.default
        if isinstance(spec.default, bool):
            values[name] = str(value).lower() not in ("false", "0", "no")
        else:
            values[name] = type(spec.default)(value)
    return values


def ui_field_behaviour(conn_type: str) -> dict:
    """The form's behaviour of a connection type in the shape `get_ui_field_behaviour` returns."""
    declared = FIELD_BEHAVIOUR[conn_type]
    return {"hidden_fields": declared["hidden-fields"], "relabeling": declared["relabeling"],
            "placeholders": {**declared["placeholders"],
                             **{name: f"{spec.default}" for name, spec in EXTRAS[conn_type].items()}}}


def _conn_fields(conn_type: str) -> dict:
    return {name: {"label": spec.label, "description": f"{spec.description} Default: {spec.default}.",
                   "schema": {"type": [_JSON_TYPES[type(spec.default)], "null"]}}
            for name, spec in EXTRAS[conn_type].items()}


def get_provider_info() -> dict:
    """The provider's metadata, in the shape of Airflow's provider_info.schema.json."""
    return {
        "package-name": PACKAGE,
        "name": "Clever attendance for Safety Shield",
        "description": "Clever's attendance API and Safety Shield's dataFileUpload API: hooks, the upload "
                       "operator, and the pipeline between them.",
        "versions": [version(PACKAGE)],
        "hooks": [{"integration-name": name, "python-modules": [path.rsplit(".", 1)[0]]}
                  for path, name in HOOKS.values()],
        "operators": [{"integration-name": "Safety Shield",
                       "python-modules": ["clever_attendance.operators.upload"]}],
        "triggers": [{"integration-name": "Safety Shield",
                      "python-modules": ["clever_attendance.triggers.safety_shield"]}],
        "connection-types": [{"connection-type": conn_type, "hook-class-name": path, "hook-name": name,
                              "ui-field-behaviour": FIELD_BEHAVIOUR[conn_type], "conn-fields": _conn_fields(conn_type)}
                             for conn_type, (path, name) in HOOKS.items()],
    }
