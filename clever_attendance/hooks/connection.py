"""The base URL an HTTP-type Airflow connection names, however its host was written."""

from __future__ import annotations

from airflow.sdk import Connection


def base_url(conn: Connection, default: str = "") -> str:
    """`host` as a URL: used as is when it has a scheme, else built from schema (https), host and port."""
    if not conn.host:
        return default
    if "://" in conn.host:
        return conn.host.rstrip("/")
    return f"{conn.schema or 'https'}://{conn.host}" + (f":{conn.port}" if conn.port else "")
