"""With a real scheduler (airflow standalone, LocalExecutor, a triggerer): a backfill, a Deadline Alert by
e-mail, an import waited for in the triggerer, the watcher's event-driven sync of one district, the data guard's
holds decided (or not) by a person, and the Attendance board in a real browser.

The metadata database is PostgreSQL: Airflow refuses to create a backfill on SQLite while the
scheduler runs ("not supported on SQLite under concurrent access").
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests

from clever_attendance.pipeline import config
from clever_attendance_sandbox.local_airflow import postgres_database, running_airflow, wait_for
from clever_attendance_sandbox.process import move_clock, running_sandbox, set_faults
from clever_attendance_sandbox.testing import NOW, districts_variant
from clever_attendance_sandbox.truth import configured_truth
from clever_attendance_sandbox.upload_store import imported_rows
from clever_attendance_sandbox.wiring import airflow_env

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def cluster(smtp, tmp_path_factory):
    """The sandbox and a standalone Airflow whose polling DAG has a deadline of 3 seconds."""
    work = tmp_path_factory.mktemp("scheduler")
    # reconcile_days 1: the daily DAG, unpaused for the backfill, makes its scheduled run too; reconciling
    # everything the sandbox keeps is test_mirror's, not these tests'
    districts = districts_variant(work / "districts.yaml", poll_deadline_minutes="0.05", task_retries="0",
                                  alert_emails="[attendance-team@district.test]", watch_interval_seconds="2",
                                  reconcile_days="1")
    # shelbyville's held dates wait 36 seconds for a person (the guard's timeout test), springfield's the default
    chicago = "    timezone: America/Chicago\n"
    districts.write_text(districts.read_text().replace(chicago, chicago + "    guard: {hold_timeout_hours: 0.01}\n"))
    with running_sandbox("--now", NOW.isoformat(), workdir=str(work)) as sandbox, postgres_database() as url:
        env = airflow_env(work / "airflow_home", sandbox, work / "staging", districts, sql_alchemy_conn=url)
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp.connection
        # Safety Shield failing: the hook's retries are the connection's to set; here one, so a test waits seconds
        uploads = json.loads(env["AIRFLOW_CONN_SAFETY_SHIELD_DEFAULT"])
        env["AIRFLOW_CONN_SAFETY_SHIELD_DEFAULT"] = json.dumps({**uploads, "extra": {
            **uploads["extra"], "max_retries": 1, "backoff_seconds": 0.2}})
        env["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"  # as `make up` does
        # a second login, of Airflow's standard User role: it may trigger DAGs and answer requests, but is not
        # among the districts' reviewers (the shipped file's `reviewers: [admin]`)
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin,clerk:user"
        with running_airflow(env, work) as airflow:
            airflow.wait_for_dag("clever_attendance")
            airflow.wait_for_dag("clever_attendance_daily")
            yield sandbox, airflow, config.load(districts)


def test_the_api_server_shows_both_connection_types_and_their_test_buttons_work(cluster):
    sandbox, airflow, _ = cluster
    base, headers = airflow.env["AIRFLOW__API__BASE_URL"], token(airflow)
    meta = {m["connection_type"]: m for m in requests.get(f"{base}/ui/connections/hook_meta", headers=headers,
                                                          timeout=60).json()}
    assert meta["clever"]["hook_name"] == "Clever"
    assert meta["clever"]["standard_fields"]["login"]["title"] == "Client id"
    assert meta["safety_shield"]["hook_name"] == "Safety Shield"
    assert meta["safety_shield"]["standard_fields"]["password"]["title"] == "API key"

    def test(conn_type: str, host: str, password: str, **fields) -> dict:
        body = {"connection_id": f"{conn_type}_probe", "conn_type": conn_type, "host": host, "password": password,
                **fields}
        return requests.post(f"{base}/api/v2/connections/test", json=body, headers=headers, timeout=60).json()

    clever = {"login": sandbox["clever_client_id"], "extra": json.dumps({"oauth_url": sandbox["clever_url"]})}
    good = test("clever", sandbox["clever_url"], sandbox["clever_client_secret"], **clever)
    assert good["status"] is True and good["message"].startswith("Clever accepted the app's client id and secret")
    wrong = test("clever", sandbox["clever_url"], "a-wrong-secret", **clever)
    assert wrong == {"status": False, "message": "Clever refused the app's client id and secret (HTTP 401) at "
                                                 f"{sandbox['clever_url']}/oauth/tokens"}
    assert test("safety_shield", sandbox["upload_url"], sandbox["upload_api_key"]) == {
        "status": True, "message": f"Safety Shield accepted the API key at {sandbox['upload_url']}"}
    assert test("safety_shield", sandbox["upload_url"], "a-wrong-key") == {
        "status": False, "message": f"Safety Shield refused the API key (HTTP 401) at {sandbox['upload_url']}"}

    # as the Connections form does: saved without a port, then tested with its masked secret and `port: 0`
    saved = {"connection_id": "clever_form", "conn_type": "clever", "host": sandbox["clever_url"],
             "password": sandbox["clever_client_secret"], **clever}
    assert requests.post(f"{base}/api/v2/connections", json=saved, headers=headers, timeout=60).status_code == 201
    form = {**saved, "password": "***", "port": 0}  # the secret unchanged: masked
    assert test(**form)["message"].startswith("Clever accepted the app's client id and secret")
    typed = test(**{**form, "password": "a-wrong-secret"})
    assert typed["message"].startswith("Clever refused the app's client id and secret (HTTP 401)"), typed


def test_a_backfill_of_three_school_days_delivers_exactly_their_ground_truth(cluster, districts):
    sandbox, airflow, fleet = cluster
    airflow.cli("dags", "unpause", "clever_attendance_daily")
    # the runs' logical dates (02:00 New York, 07:00 UTC) must fall in the range: hence the end of day
    airflow.cli("backfill", "create", "--dag-id", "clever_attendance_daily", "--from-date", "2026-11-17",
                "--to-date", "2026-11-19T23:59:59", "--max-active-runs", "2")
    states = airflow.wait_for_runs("clever_attendance_daily", 3, 600, run_type="backfill")
    assert sorted(states.values()) == ["success"] * 3, states
    logical = airflow.query("select logical_date from dag_run where dag_id = ? and run_type = ?",
                            "clever_attendance_daily", "backfill")
    assert sorted(d.date().isoformat() for (d,) in logical) == ["2026-11-17", "2026-11-18", "2026-11-19"]
    start, end = date(2026, 11, 17), date(2026, 11, 19)
    for district in fleet.districts:
        truth = configured_truth(districts[district.slug], district, start, end, NOW)
        # unpausing also made the scheduler run the latest date, Friday the 20th: leave its rows aside
        held = [row for row in imported_rows(sandbox["db"], district.safety_shield_district_id)
                if row[2] != "11/20/2026"]
        assert held == truth.rows, district.slug


def test_a_run_that_outlasts_its_deadline_sends_an_alert(cluster, smtp):
    sandbox, airflow, _ = cluster
    set_faults(sandbox, "clever", latency_ms=1500)  # every Clever answer takes 1.5 s: the run takes longer than 3 s
    smtp.messages.clear()
    airflow.cli("dags", "unpause", "clever_attendance")  # the scheduler creates the latest scheduled run
    subject, body = wait_for("the deadline alert e-mail", lambda: next(
        ((s, b) for s, b in smtp.texts() if "not finished" in s), None), 240, every=1)
    runs = airflow.run_states("clever_attendance")  # one, or two if a new tick came during the test
    assert subject == "[Clever attendance] clever_attendance: not finished 0.05 minutes after it was queued"
    assert any(f"The Clever attendance run {run_id} of clever_attendance missed its deadline" in body
               for run_id in runs)
    assert "is still running" in body
    assert "Shelbyville Unified (slug shelbyville, Clever district 84f02b8aba713f7e89be22b5, " \
           "Safety Shield 1002)" in body
    assert "Springfield Public Schools (slug springfield" in body
    assert "/dags/clever_attendance/runs/scheduled__" in body
    set_faults(sandbox, "clever")
    airflow.wait_for_runs("clever_attendance", 1, 300)
    airflow.cli("dags", "pause", "clever_attendance")


def test_a_failed_upload_cleared_while_its_runs_deadline_is_pending_goes_on(cluster, districts):
    """The failure notice's advice, as a person follows it: Clear the district's upload (the REST call the UI's
    Clear makes) once Safety Shield answers again, while the run's Deadline Alert is still pending."""
    sandbox, airflow, fleet = cluster
    springfield = fleet.district("springfield")
    set_faults(sandbox, "upload", error_rate=1.0)  # every answer a 500
    try:
        airflow.cli("dags", "unpause", "clever_attendance_daily")
        airflow.cli("dags", "trigger", "clever_attendance_daily", "--run-id", "clear_me",  # a date no test sends
                    "--logical-date", "2026-10-30T02:00:00-04:00", "--conf", '{"districts": ["springfield"]}')
        wait_for("the run to fail at springfield's upload",
                 lambda: airflow.run_states("clever_attendance_daily").get("clear_me") == "failed", 300, every=1)
    finally:
        set_faults(sandbox, "upload")
    pending = airflow.query("select count(*) from deadline join dag_run on deadline.dagrun_id = dag_run.id "
                            "where dag_run.run_id = ? and not deadline.missed", "clear_me")
    assert pending == [(1,)], "the run's deadline (daily_deadline_minutes, 120) is still pending"
    base = airflow.env["AIRFLOW__API__BASE_URL"]
    cleared = requests.post(f"{base}/api/v2/dags/clever_attendance_daily/clearTaskInstances", headers=token(airflow),
                            json={"dry_run": False, "dag_run_id": "clear_me", "task_ids": ["district.sync"],
                                  "only_failed": True, "include_downstream": True}, timeout=60)
    assert cleared.status_code == 200, cleared.text
    assert {(t["task_id"], t["rendered_map_index"]) for t in cleared.json()["task_instances"]} >= {
        ("district.sync", "springfield"), ("report", None)}
    wait_for("the cleared run to end", lambda: airflow.run_states("clever_attendance_daily")["clear_me"] in (
        "success", "failed"), 300, every=1)
    assert airflow.run_states("clever_attendance_daily")["clear_me"] == "success"
    log = requests.get(f"{base}/api/v2/dags/clever_attendance_daily/dagRuns/clear_me/taskInstances/district.sync/"
                       "logs/2?map_index=0", headers={**token(airflow), "Accept": "application/json"}, timeout=60)
    assert log.status_code == 200, log.text
    for step in ("extract", "transform"):  # the cleared try started at the upload, where the first one failed
        assert f"springfield: {step} already done in this run: its kept result is used" in log.text, step
    assert "::group::upload" in log.text and "::group::extract" not in log.text
    day = date(2026, 10, 30)
    held = imported_rows(sandbox["db"], springfield.safety_shield_district_id)
    assert [row for row in held if row[2] == "10/30/2026"] == configured_truth(
        districts["springfield"], springfield, day, day, NOW).rows


def test_the_upload_waits_for_a_slow_import_deferred_in_the_triggerer(cluster, districts):
    sandbox, airflow, fleet = cluster
    springfield = fleet.district("springfield")
    set_faults(sandbox, "upload", import_seconds=15)
    try:
        airflow.cli("dags", "unpause", "clever_attendance_daily")
        airflow.cli("dags", "trigger", "clever_attendance_daily", "--run-id", "slow_import",
                    "--logical-date", "2026-11-16T02:00:00-05:00", "--conf", '{"districts": ["springfield"]}')

        wait_for("springfield's upload to defer while Safety Shield imports",
                 lambda: sync_state(airflow, "slow_import", "springfield") == "deferred",
                 240, every=0.5)
        wait_for("the run slow_import", lambda: airflow.run_states("clever_attendance_daily").get("slow_import") in (
            "success", "failed"), 300, every=1)
    finally:
        set_faults(sandbox, "upload")
    assert airflow.run_states("clever_attendance_daily")["slow_import"] == "success"
    assert sync_state(airflow, "slow_import", "springfield") == "success"
    day = date(2026, 11, 16)
    truth = configured_truth(districts["springfield"], springfield, day, day, NOW)
    held = imported_rows(sandbox["db"], springfield.safety_shield_district_id)
    assert [row for row in held if row[2] == "11/16/2026"] == truth.rows


def test_a_district_held_up_in_one_poll_leaves_the_next_poll_to_deliver_the_others(cluster, districts):
    """One district's step slow or retrying holds its run open: the next poll starts on time, leaves that district
    to the run that has it, and delivers the others."""
    sandbox, airflow, fleet = cluster
    day, when = date(2026, 10, 29), {"start_date": "2026-10-29", "end_date": "2026-10-29", "force": True}
    unpause_polls(airflow)
    set_faults(sandbox, "upload", import_seconds=60)  # springfield's import takes a minute
    try:
        airflow.cli("dags", "trigger", "clever_attendance", "--run-id", "held_up",
                    "--conf", json.dumps({**when, "districts": ["springfield"]}))
        wait_for("springfield's upload to wait on Safety Shield",
                 lambda: sync_state(airflow, "held_up", "springfield") == "deferred", 240, every=0.5)
    finally:
        set_faults(sandbox, "upload")
    airflow.cli("dags", "trigger", "clever_attendance", "--run-id", "on_time", "--conf", json.dumps(when))
    wait_for("the next poll", lambda: airflow.run_states("clever_attendance").get("on_time") in ("success", "failed"),
             240, every=1)
    try:
        assert airflow.run_states("clever_attendance")["on_time"] == "success"
        assert report_status(airflow, "on_time") == {"shelbyville": "uploaded",
                                                     "springfield": "skipped: in another run"}
        shelbyville = fleet.district("shelbyville")
        held = imported_rows(sandbox["db"], shelbyville.safety_shield_district_id)
        assert [row for row in held if row[2] == "10/29/2026"] == configured_truth(
            districts["shelbyville"], shelbyville, day, day, NOW).rows
    finally:
        wait_for("the held-up run", lambda: airflow.run_states("clever_attendance")["held_up"] in (
            "success", "failed"), 300, every=2)
        airflow.cli("dags", "pause", "clever_attendance")
    assert airflow.run_states("clever_attendance")["held_up"] == "success"
    assert sync_state(airflow, "held_up", "springfield") == "success"
    ended = dict(airflow.query("select run_id, end_date from dag_run where run_id in (?, ?)", "held_up", "on_time"))
    assert ended["on_time"] < ended["held_up"], "the next poll did not wait for the held-up district"


def test_a_district_whose_clever_sync_moves_is_synced_alone_by_the_watchers_event(cluster, districts):
    sandbox, airflow, fleet = cluster
    springfield, shelbyville = fleet.district("springfield"), fleet.district("shelbyville")
    uploads = f"{sandbox['upload_url']}/admin/uploads"

    def posted(district: config.District) -> int:
        return sum(u["districtId"] == district.safety_shield_district_id
                   for u in requests.get(uploads, timeout=10).json()["uploads"])

    def district_reads() -> int:
        return requests.get(f"{sandbox['clever_url']}/admin/stats", timeout=10).json().get("district_reads", 0)

    before = {"shelbyville": posted(shelbyville), "springfield": posted(springfield)}
    reads = district_reads()
    airflow.cli("dags", "unpause", "clever_attendance_events")
    try:
        # the watcher's first reading of both districts is its baseline: only a sync that moves after it fires
        wait_for("the watcher in the triggerer to read both districts", lambda: district_reads() >= reads + 2, 180)
        monday = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in Springfield: its 09:30 upload is in Clever
        move_clock(sandbox, monday, springfield.clever_district_id)
        (run_id, state), = airflow.wait_for_runs("clever_attendance_events", 1, 300).items()
    finally:
        airflow.cli("dags", "pause", "clever_attendance_events")
    assert state == "success"
    assert airflow.query("select run_type from dag_run where run_id = ?", run_id) == [("asset_triggered",)]
    labels = airflow.query("select rendered_map_index, state from task_instance where run_id = ? and task_id = ?",
                           run_id, "district.sync")
    assert labels == [("springfield", "success")], "springfield alone, named by its slug"
    start, end = date(2026, 11, 20), date(2026, 11, 23)  # the polling window of Monday: Friday to Monday
    truth = configured_truth(districts["springfield"], springfield, start, end, monday)
    days = {f"11/{d:02d}/2026" for d in range(20, 24)}
    held = [row for row in imported_rows(sandbox["db"], springfield.safety_shield_district_id) if row[2] in days]
    assert held == truth.rows and any(row[2] == "11/23/2026" for row in held), "Monday's rows arrived exactly"
    assert posted(shelbyville) == before["shelbyville"], "shelbyville's sync did not move: nothing was posted"
    assert posted(springfield) > before["springfield"]


def test_a_broken_feed_waits_for_a_person_who_approves_or_rejects_it(cluster, districts, smtp):
    """History first (two school weeks delivered), then broken feeds: a school of springfield all absent on one
    date, a school missing on another. Each holds springfield's date for a person while shelbyville's normal day
    is uploaded; approving uploads exactly the broken day as Clever holds it, rejecting uploads nothing."""
    from dataclasses import replace

    import sqlalchemy as sa

    from clever_attendance.hooks.ledger import engine
    from clever_attendance.ledger import tables
    from clever_attendance_sandbox.browser import chromium, follow_framed_link, sign_in
    from clever_attendance_sandbox.faults import FeedBreak

    sandbox, airflow, fleet = cluster
    springfield, shelbyville = fleet.district("springfield"), fleet.district("shelbyville")
    ledger = engine(sa.make_url("sqlite:///" + json.loads(airflow.env["AIRFLOW_CONN_ATTENDANCE_LEDGER"])["host"]))
    first, second, _ = districts["springfield"].school_ids()
    breaks = [FeedBreak(district=springfield.clever_district_id, school=first, date="2026-11-13", kind="all_absent"),
              FeedBreak(district=springfield.clever_district_id, school=second, date="2026-11-12", kind="missing")]
    broken = replace(districts["springfield"], breaks=tuple(breaks))
    airflow.cli("dags", "unpause", "clever_attendance")
    try:
        poll(airflow, "guard_history", "2026-11-02", "2026-11-11")
        assert not review_runs(airflow), "ordinary days: nothing held"
        set_faults(sandbox, "clever", feed_breaks=[b.model_dump(mode="json") for b in breaks])
        smtp.messages.clear()
        before = posted(sandbox, springfield)
        poll(airflow, "guard_broken_13", "2026-11-13", "2026-11-13")
        (approve_run, _), = review_runs(airflow).items()
        # the district's run is over: shelbyville's normal day is in Safety Shield, springfield's waits
        day = date(2026, 11, 13)
        assert rows_of(sandbox, shelbyville, day) == configured_truth(districts["shelbyville"], shelbyville, day, day,
                                                                       NOW).rows
        assert rows_of(sandbox, springfield, day) == [] and posted(sandbox, springfield) == before
        assert report_status(airflow, "guard_broken_13") == {"shelbyville": "uploaded",
                                                              "springfield": "held for a person"}
        subject, body = wait_for("the hold notice", lambda: next(
            ((s, b) for s, b in smtp.texts() if "held for a person" in s), None), 120)
        assert subject == "[Clever attendance] springfield: 2026-11-13 held for a person"
        assert "Springfield Public Schools (slug springfield, Clever district" in body
        assert f"2026-11-13 school SCH003 (Clever {first}): absent share jumped" in body and "100% absent" in body, body
        assert f"/dags/clever_attendance_review/runs/{approve_run}/tasks/decide/required_actions" in body
        decision = f"/dags/clever_attendance_review/runs/{approve_run}/tasks/decide/required_actions"
        with chromium() as browser:  # the board's "decide", clicked as a person does, opens the decision
            base = airflow.env["AIRFLOW__API__BASE_URL"]
            sign_in(browser, base, "admin", password_of(airflow))
            assert follow_framed_link(browser, base + "/plugin/clever-attendance", ["decide"], decision) == \
                base + decision
        refused = respond(airflow, approve_run, "Approve", user="clerk", expect=403)
        assert "is not a respondent" in refused, "only the district's reviewers decide"
        respond(airflow, approve_run, "Approve")
        assert airflow.wait_for_runs("clever_attendance_review", 1, 180) == {approve_run: "success"}
        truth = configured_truth(broken, springfield, day, day, NOW)
        assert rows_of(sandbox, springfield, day) == truth.rows, "the broken day, exactly as Clever holds it"
        assert {r[8] for r in truth.rows if r[0] == "SCH003"} == {"Absent"}

        before = posted(sandbox, springfield)
        poll(airflow, "guard_broken_12", "2026-11-12", "2026-11-12")
        reject_run, = set(review_runs(airflow)) - {approve_run}
        respond(airflow, reject_run, "Reject")
        assert airflow.wait_for_runs("clever_attendance_review", 2, 180)[reject_run] == "success"
        assert posted(sandbox, springfield) == before, "rejected: nothing of springfield was posted"
    finally:
        set_faults(sandbox, "clever")
        airflow.cli("dags", "pause", "clever_attendance")
    with ledger.connect() as db:
        decided = {(r.attendance_date, r.decision, r.decided_by, r.review_run_id) for r in db.execute(
            sa.select(tables.holds).where(tables.holds.c.district == "springfield"))}
        stands = {r.attendance_date: (r.status, bool(r.delivered_digest)) for r in db.execute(
            sa.select(tables.district_days).where(tables.district_days.c.district == "springfield",
                                                  tables.district_days.c.attendance_date.in_(["2026-11-12",
                                                                                              "2026-11-13"])))}
        history = {(r.district, r.attendance_date) for r in db.execute(sa.select(tables.school_days).where(
            tables.school_days.c.attendance_date.in_(["2026-11-12", "2026-11-13"])))}
    assert decided == {("2026-11-13", "approved", "admin", approve_run),
                       ("2026-11-12", "rejected", "admin", reject_run)}
    # the approved day's rows are what Safety Shield holds: read again unchanged, they are neither posted nor held
    assert stands == {"2026-11-13": ("uploaded: approved by admin", True),
                      "2026-11-12": ("held: rejected by admin", False)}
    # a held day never becomes a school's usual; shelbyville's ordinary days do
    assert history == {("shelbyville", "2026-11-12"), ("shelbyville", "2026-11-13")}


def test_a_hold_nobody_decides_fails_with_a_notice_and_uploads_nothing(cluster, districts, smtp):
    """shelbyville waits 36 seconds for a person (its guard's hold_timeout_hours in this module's file)."""
    from clever_attendance_sandbox.faults import FeedBreak

    sandbox, airflow, fleet = cluster
    shelbyville = fleet.district("shelbyville")
    school = districts["shelbyville"].school_ids()[0]
    broken = FeedBreak(district=shelbyville.clever_district_id, school=school, date="2026-11-10", kind="partial",
                       share=0.2)
    earlier = set(review_runs(airflow))
    airflow.cli("dags", "unpause", "clever_attendance")
    try:
        poll(airflow, "guard_history_shelbyville", "2026-11-02", "2026-11-09", districts=["shelbyville"])
        set_faults(sandbox, "clever", feed_breaks=[broken.model_dump(mode="json")])
        smtp.messages.clear()
        before = posted(sandbox, shelbyville)
        poll(airflow, "guard_unanswered", "2026-11-10", "2026-11-10", districts=["shelbyville"])
    finally:
        set_faults(sandbox, "clever")
        airflow.cli("dags", "pause", "clever_attendance")
    timed_out, = set(review_runs(airflow)) - earlier
    states = wait_for("the review to time out", lambda: (lambda s: s if s.get(timed_out) in ("success", "failed")
                                                         else None)(airflow.run_states("clever_attendance_review")),
                      240, every=2)
    assert states[timed_out] == "failed"
    subject, body = wait_for("the timeout notice", lambda: next(
        ((s, b) for s, b in smtp.texts() if "decide failed" in s), None), 120)
    assert subject == "[Clever attendance] shelbyville: decide failed: no decision in time"
    assert "Shelbyville Unified (slug shelbyville" in body and "nothing of them was uploaded" in body
    assert posted(sandbox, shelbyville) == before, "never a silent upload"


def test_a_review_run_started_by_hand_acts_on_nothing(cluster, smtp):
    """A User triggers clever_attendance_review with a conf of their own: naming a hold the guard recorded (for
    another run) and a path to shelbyville's staged rows, as springfield's. The run fails before anything is read
    or uploaded, and no district's team is paged for it."""
    sandbox, airflow, fleet = cluster
    held = next(iter(review_runs(airflow)), "hold__springfield__2026-11-13")
    staged = Path(airflow.env["ATTENDANCE_STAGING_URL"]) / "_holds"
    before = {slug: posted(sandbox, fleet.district(slug)) for slug in ("springfield", "shelbyville")}
    smtp.messages.clear()
    forged = {"hold": held, "district": "springfield", "held_path": str(staged), "rows": 1, "dates": []}
    answer = requests.post(f"{airflow.env['AIRFLOW__API__BASE_URL']}/api/v2/dags/clever_attendance_review/dagRuns",
                           headers=token(airflow, "clerk"), timeout=30,
                           json={"dag_run_id": "manual__forged", "logical_date": None, "conf": forged})
    assert answer.status_code == 200, answer.text
    states = wait_for("the forged review to end", lambda: (lambda s: s if s.get("manual__forged") in (
        "success", "failed") else None)(review_runs(airflow)), 180, every=2)
    assert states["manual__forged"] == "failed"
    assert {slug: posted(sandbox, fleet.district(slug)) for slug in before} == before, "nothing uploaded"
    assert staged.exists(), "nothing removed"
    assert not [s for s, _ in smtp.texts() if "springfield" in s or "shelbyville" in s], "nobody paged"


def test_the_attendance_board_in_a_real_browser_shows_what_the_ledger_holds(cluster, districts):
    """A run of both districts, and a hold of springfield's the test records itself (as the guard does: the date's
    row, and the hold a person is asked about), so that it needs no other test; then the board, as a person sees it:
    the held district among those that need attention, the hold waiting, a search, a run's tab, a link to a run."""
    import sqlalchemy as sa
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from clever_attendance.hooks.ledger import engine
    from clever_attendance.ledger import read, tables
    from clever_attendance.ledger.record import RunEntry, write
    from clever_attendance_sandbox.browser import artifacts, chromium, follow_framed_link, framed_table, sign_in

    sandbox, airflow, fleet = cluster
    unpause_polls(airflow)
    try:
        airflow.cli("dags", "trigger", "clever_attendance", "--run-id", "board_run", "--conf",
                    json.dumps({"start_date": "2026-11-19", "end_date": "2026-11-20", "force": True}))
        wait_for("the run board_run", lambda: airflow.run_states("clever_attendance").get("board_run") in (
            "success", "failed"), 300, every=2)
    finally:
        airflow.cli("dags", "pause", "clever_attendance")
    assert airflow.run_states("clever_attendance")["board_run"] == "success"
    ledger = engine(sa.make_url("sqlite:///" + json.loads(airflow.env["AIRFLOW_CONN_ATTENDANCE_LEDGER"])["host"]))
    held = RunEntry("clever_attendance", "board_hold", "manual")
    held.deliveries.append({"district": "springfield", "attendance_date": "2026-11-18",
                            "window": "2026-11-18_2026-11-18", "status": "held for a person"})
    write(ledger, held, 30)
    with ledger.begin() as db:
        db.execute(tables.holds.delete().where(tables.holds.c.fingerprint == "board_test"))
        db.execute(tables.holds.insert().values(
            district="springfield", attendance_date="2026-11-18", fingerprint="board_test",
            dag_id="clever_attendance", run_id="board_hold", review_run_id="hold__springfield__2026-11-18__board",
            held_at=tables.iso(datetime.now(UTC)),
            findings="2026-11-18 school SCH003: absent share jumped: 412 records, 412 students, 100% absent"))
    with ledger.connect() as db:
        run = read.run_outcome(db, "clever_attendance", "board_run")
        stands = read.grid(db, ["2026-11-19", "2026-11-20"], ["springfield", "shelbyville"])
        newest = sa.select(tables.district_days.c.district, sa.func.max(tables.district_days.c.attendance_date)
                           .label("day")).group_by(tables.district_days.c.district).subquery()
        newest_run = dict(db.execute(sa.select(tables.district_days.c.district, tables.district_days.c.run_id).join(
            newest, sa.and_(newest.c.district == tables.district_days.c.district,
                            newest.c.day == tables.district_days.c.attendance_date))).all())
        last_delivered = dict(db.execute(sa.select(tables.district_days.c.district,
                                                   sa.func.max(tables.district_days.c.attendance_date))
                                         .where(tables.district_days.c.delivered > 0)
                                         .group_by(tables.district_days.c.district)).all())
    thursday = date(2026, 11, 19)
    for slug in ("springfield", "shelbyville"):  # the ledger holds what Safety Shield got
        truth = configured_truth(districts[slug], fleet.district(slug), thursday, thursday, NOW)
        assert next(r["delivered"] for r in run if (r["district"], r["attendance_date"]) == (slug, "2026-11-19")) \
            == len(truth.rows)
    base = airflow.env["AIRFLOW__API__BASE_URL"]
    with chromium() as browser:
        sign_in(browser, base, "admin", password_of(airflow))
        lines = {attrs["district"].split()[0]: cells
                 for attrs, cells in framed_table(browser, base + "/plugin/clever-attendance", "districts")}
        browser.save_screenshot(str(artifacts() / "attendance-board.png"))
        waiting = {(attrs["district"], attrs["date"]): cells
                   for attrs, cells in framed_table(browser, base + "/plugin/clever-attendance", "waiting")}
        browser.get(base + "/plugin/clever-attendance")  # a search, typed in the board's frame
        WebDriverWait(browser, 30).until(ec.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
        WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.NAME, "q"))).send_keys(
            "Shelby", Keys.ENTER)
        # the search reloads the frame: the old page's element may go stale between finding it and reading it
        WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "matching" in d.find_element(By.ID, "pages").text, "the search did not answer in the frame")
        found = [row.get_attribute("data-district") for row in browser.find_elements(
            By.CSS_SELECTOR, "#districts tbody tr")]
        browser.switch_to.default_content()
        grid = {attrs["district"].split()[0]: cells
                for attrs, cells in framed_table(browser, base + "/plugin/clever-attendance", "grid")}
        tab = framed_table(browser, f"{base}/dags/clever_attendance/runs/board_run/plugin/attendance", "outcome")
        browser.save_screenshot(str(artifacts() / "attendance-run-tab.png"))
        landed = follow_framed_link(browser, base + "/plugin/clever-attendance", ["Springfield Public Schools",
                                    "board_run"], "/dags/clever_attendance/runs/board_run")
        assert landed == f"{base}/dags/clever_attendance/runs/board_run", "the board's run link opens the run"
        WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "board_run" in d.find_element(By.TAG_NAME, "body").text, "the run's page did not show the run")
    assert sorted(lines) == ["shelbyville", "springfield"]
    assert "held" in lines["springfield"][1].split(), "among the districts that need attention, and why"
    why, _, decision = waiting[("springfield", "2026-11-18")][2:]
    assert (why, decision) == ("2026-11-18 school SCH003: absent share jumped: 412 records, 412 students, 100% absent",
                               "decide"), "the hold waits for a person"
    assert found == ["shelbyville shelbyville unified"], "the search, answered by the server"
    for slug in lines:
        friday = stands[(slug, "2026-11-20")]
        assert lines[slug][2] == last_delivered[slug] >= "2026-11-20", "the last date delivered"
        assert lines[slug][10] == newest_run[slug], "the run of the district's newest date"
        for day in ("2026-11-19", "2026-11-20"):
            row = stands[(slug, day)]
            assert (f"{slug} {day}: uploaded · {row['delivered']} rows delivered · {row['rejected']} rejected "
                    f"({row['rejected'] / row['read']:.1%})") in grid[slug], f"{slug} {day}, as the ledger holds it"
        assert friday["status"] == "uploaded" and friday["delivered"] > 0
    shown = {(attrs["district"], attrs["date"]): cells[2:6] for attrs, cells in tab}
    assert shown == {(r["district"], r["attendance_date"]): [r["status"], str(r["read"]), str(r["delivered"]),
                                                             str(r["rejected"])] for r in run}


def poll(airflow, run_id: str, start: str, end: str, districts: list[str] | None = None, force: bool = True) -> None:
    """A manual run of the polling DAG over a window, waited for; it must succeed."""
    conf = {"start_date": start, "end_date": end, "force": force, **({"districts": districts} if districts else {})}
    airflow.cli("dags", "trigger", "clever_attendance", "--run-id", run_id, "--conf", json.dumps(conf))
    wait_for(f"the run {run_id}", lambda: airflow.run_states("clever_attendance").get(run_id) in ("success", "failed"),
             300, every=2)
    assert airflow.run_states("clever_attendance")[run_id] == "success", airflow.query(
        "select task_id, rendered_map_index, state from task_instance where run_id = ?", run_id)


def sync_state(airflow, run_id: str, slug: str) -> str | None:
    """The state of a district's sync in a run, by the name its instance shows in the grid."""
    found = airflow.query("select state from task_instance where run_id = ? and task_id = ? and rendered_map_index = ?",
                          run_id, "district.sync", slug)
    return found[0][0] if found else None


def unpause_polls(airflow) -> None:
    """Unpause the polling DAG, and wait for the latest scheduled run it makes then (if not made before) to end: a
    manual run meanwhile would leave it the districts it syncs."""
    airflow.cli("dags", "unpause", "clever_attendance")
    wait_for("the latest scheduled poll to end", lambda: (lambda runs: runs and all(
        state in ("success", "failed") for state in runs.values()))(airflow.run_states("clever_attendance")), 300)


def review_runs(airflow) -> dict[str, str]:
    return airflow.run_states("clever_attendance_review")


def report_status(airflow, run_id: str) -> dict[str, str]:
    (value,), = airflow.query("select value from xcom where run_id = ? and task_id = 'report' and key = "
                              "'return_value'", run_id)
    rows = json.loads(value) if isinstance(value, str) else value
    return {row["district"]: row["status"] for row in rows}


def posted(sandbox: dict, district: config.District) -> int:
    uploads = requests.get(f"{sandbox['upload_url']}/admin/uploads", timeout=10).json()["uploads"]
    return sum(u["districtId"] == district.safety_shield_district_id for u in uploads)


def rows_of(sandbox: dict, district: config.District, day: date) -> list[tuple]:
    return [row for row in imported_rows(sandbox["db"], district.safety_shield_district_id)
            if row[2] == day.strftime("%m/%d/%Y")]


def password_of(airflow, user: str = "admin") -> str:
    """The password the simple auth manager generated for a user."""
    return json.loads((Path(airflow.env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated")
                      .read_text())[user]


def token(airflow, user: str = "admin") -> dict[str, str]:
    """A bearer token of one of the simple auth manager's users, as its login page gets it."""
    base = airflow.env["AIRFLOW__API__BASE_URL"]
    answer = requests.post(f"{base}/auth/token", json={"username": user, "password": password_of(airflow, user)},
                           timeout=30)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def respond(airflow, run_id: str, choice: str, user: str = "admin", expect: int = 200) -> str:
    """A person's answer through the REST API, as the Required Actions page sends it; the answer's text."""
    base, headers = airflow.env["AIRFLOW__API__BASE_URL"], token(airflow, user)
    url = f"{base}/api/v2/dags/clever_attendance_review/dagRuns/{run_id}/taskInstances/decide/-1/hitlDetails"
    wait_for(f"the request of {run_id} in Required Actions", lambda: requests.get(
        url, headers=headers, timeout=30).status_code == 200, 120, every=1)
    answer = requests.patch(url, json={"chosen_options": [choice]}, headers=headers, timeout=30)
    assert answer.status_code == expect, answer.text
    if expect == 200:
        assert answer.json()["responded_by"]["name"] == user
    return answer.text
