"""Shared fixtures: one sandbox per test module, on free loopback ports, with a frozen clock."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
# Airflow reads its settings at first import: give the tests their own home before that.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-test-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__MAX_MAP_LENGTH", "10000")  # as the deployments set it (settings.MAX_MAP_LENGTH)

import pytest

from clever_attendance_sandbox.generator import PRESETS, District
from clever_attendance_sandbox.process import running_sandbox, set_faults
from clever_attendance_sandbox.testing import NOW, districts_variant

# fixtures that start servers (make_up: test_up's, Airflow and the sandbox in a subprocess)
SERVERS = {"sandbox", "airflow_db", "pipeline_env", "cluster", "smtp", "slack", "make_up"}


def pytest_collection_modifyitems(items) -> None:
    """A test that starts no server is in the fast tier (`make test-fast`: `pytest -m fast`)."""
    for item in items:
        if not SERVERS & set(item.fixturenames):
            item.add_marker(pytest.mark.fast)


@pytest.fixture(scope="module")
def sandbox():
    with running_sandbox("--now", NOW.isoformat(), "--districts", "springfield,shelbyville,tiny") as info:
        yield info


@pytest.fixture(autouse=True)
def _faults_off(request):
    """Every test starts with the sandbox's faults off, whatever the previous test set."""
    yield
    if "sandbox" in request.fixturenames:
        info = request.getfixturevalue("sandbox")
        set_faults(info, "clever")
        set_faults(info, "upload")


@pytest.fixture(scope="session")
def districts() -> dict[str, District]:
    return {slug: District(PRESETS[slug]) for slug in ("springfield", "shelbyville", "tiny")}


@pytest.fixture
def clever_conn(monkeypatch):
    """Make an Airflow connection to the Clever stand-in from environment variables; returns its id."""
    made = iter(range(1000))

    def make(info: dict, mode: str = "app", **extra) -> str:
        conn_id = f"clever_test_{next(made)}"
        body = {"conn_type": "clever", "host": info["clever_url"],
                "extra": {"oauth_url": info["clever_url"], "backoff_seconds": 0.05, **extra}}
        if mode == "app":
            body.update(login=info["clever_client_id"], password=info["clever_client_secret"])
        else:
            body["password"] = mode  # a district token held directly
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
        return conn_id

    return make


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated SQLite metadata database in the tests' Airflow home, with the pool the DAGs use."""
    from clever_attendance_sandbox.wiring import prepare

    prepare(dict(os.environ))
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def districts_file(tmp_path, monkeypatch):
    """The shipped districts, without task retries (a failing test must not wait out retry delays)."""
    path = districts_variant(tmp_path / "districts.yaml", task_retries="0")
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(path))
    return path


@pytest.fixture
def pipeline_env(sandbox, airflow_db, districts_file, tmp_path, monkeypatch):
    """Connections to the sandbox and a private staging root, as the DAGs' tasks read them."""
    from clever_attendance_sandbox.wiring import airflow_env

    env = airflow_env(Path(airflow_db), sandbox, tmp_path / "staging")
    for name in ("AIRFLOW_CONN_CLEVER_DEFAULT", "AIRFLOW_CONN_SAFETY_SHIELD_DEFAULT", "ATTENDANCE_STAGING_URL"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("AIRFLOW_CONN_ATTENDANCE_LEDGER", json.dumps({"conn_type": "sqlite",
                                                                     "host": str(tmp_path / "ledger.db")}))
    return tmp_path / "staging"


class Inbox:
    """What a real SMTP server on a loopback port received."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import email

        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def texts(self) -> list[tuple[str, str]]:
        return [(m["Subject"], _body(m)) for m in self.messages]


def _body(message) -> str:
    import html

    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    return html.unescape(part.get_payload(decode=True).decode())


@pytest.fixture(scope="module")
def smtp():
    """An aiosmtpd server on a free loopback port, and the smtp_default connection that points at it."""
    from aiosmtpd.controller import Controller

    from clever_attendance_sandbox.local_airflow import free_port

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        inbox.connection = json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port,
                                       "extra": {"disable_ssl": True, "disable_tls": True}})
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def slack():
    """A Slack webhook receiver on a loopback port (Slack is unreachable here), and the slack_attendance
    connection that points at it."""
    posts: list[tuple[str, dict]] = []

    class Webhook(BaseHTTPRequestHandler):
        """Slack's incoming-webhook protocol: a JSON POST, answered 200 "ok"."""

        def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
            posts.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(posts=posts, connection=json.dumps({
            "conn_type": "slackwebhook", "password": "T0000/B0000/not-a-secret",
            "host": f"http://127.0.0.1:{server.server_port}/services"}))
    finally:
        server.shutdown()
        server.server_close()
