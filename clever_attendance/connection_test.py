"""The Connections form's Test button, for connections without a port (Airflow 3.3, apache/airflow#73298).

The UI sends `port: 0` for a connection whose port is empty (`Number(null)`), and Airflow's test route takes 0 for
another destination than the stored NULL: unless the request carries its own secret (the form sends `***` for an
unchanged one) it answers 400, and the form shows a red icon with no message. No connection addresses port 0, so
this ASGI middleware drops `port: 0` from that one request's body, as Airflow's fix does inside the route. It can
go once that fix is in the pinned Airflow.
"""

from __future__ import annotations

import json

TEST_PATH = "/api/v2/connections/test"


class PortlessConnectionTest:
    """Pure ASGI middleware of the API server: every other request passes untouched."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(TEST_PATH):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        body = without_port_zero(body)

        sent = False

        async def replay() -> dict:  # the body once, then what the client does (a disconnect)
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        await self.app({**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}, replay, send)


def without_port_zero(body: bytes) -> bytes:
    """The request's JSON without `"port": 0`; any other body as it came."""
    try:
        found = json.loads(body)
    except ValueError:
        return body
    if not isinstance(found, dict) or type(found.get("port")) is not int or found["port"] != 0:
        return body
    del found["port"]
    return json.dumps(found).encode()
