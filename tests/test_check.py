"""The check: which districts a run syncs and with which window, and why it leaves one out (nothing new at Clever's
sync, still syncing in another run, a broken entry of the districts file), against a SQLite ledger in tmp_path and,
where a sync is compared, the Clever sandbox (a whole run: test_pipeline, test_scheduler)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from clever_attendance.contracts import Skip, Target, Window
from clever_attendance.errors import RunInputError
from clever_attendance.hooks.ledger import LedgerHook
from clever_attendance.ledger import progress
from clever_attendance.ledger.record import RunEntry, write
from clever_attendance.ledger.tables import run_districts
from clever_attendance.pipeline.check import check
from clever_attendance.settings import DAILY, EVENTS, POLL, WATCH_ASSET_URI
from clever_attendance_sandbox.testing import districts_variant

POLLED = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)  # Friday evening in both districts' time zones
TRAILING = "2026-11-17_2026-11-20"  # that Friday and the three days before (lookback_days 3)
TICK = datetime(2026, 11, 19, 7, 0, tzinfo=UTC)  # the daily DAG's tick of Thursday 2026-11-19 (02:00 in New York)
OTHER_RUN = "scheduled__2026-11-20T22:45:00+00:00"


class TaskInstance:
    """What the check asks of its task instance: XCom out, and whether another DAG run still runs. Airflow's own
    talks to its supervisor process, which a unit test does not have; this one keeps the push and answers run
    states as the API server would."""

    def __init__(self, states: dict[tuple[str, str], str] | None = None) -> None:
        self.pushed: dict[str, object] = {}
        self.states = states or {}
        self.asked: list[tuple[str, str]] = []

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        self.asked.append((dag_id, run_id))
        return self.states[(dag_id, run_id)]


def context(dag_id: str, ti: TaskInstance, moment: datetime = POLLED, run_id: str = "scheduled__now",
            run_type: str = "scheduled", params: dict | None = None, events: dict | None = None) -> dict:
    """A task's context as the check reads it. A manual run has no logical date: its moment is the run's."""
    return {"dag": SimpleNamespace(dag_id=dag_id), "run_id": run_id, "ti": ti, "params": params or {},
            "logical_date": None if run_type == "manual" else moment,
            "dag_run": SimpleNamespace(run_type=run_type, run_after=moment),
            "triggering_asset_events": events or {}}


def chosen(dag_id: str, ti: TaskInstance | None = None, **given) -> tuple[dict[str, str], dict[str, dict]]:
    """The check's districts to sync (slug: window) and those it left out (slug: the `Skip`, as XCom holds it)."""
    ti = ti or TaskInstance()
    targets = [Target.from_xcom(t) for t in check(context(dag_id, ti, **given))]
    return {t.slug: str(t.window) for t in targets}, ti.pushed["skipped"]


def recorded(run_id: str = "scheduled__now") -> dict[str, tuple[str, str]]:
    """What the ledger says of the run's districts (what the deadline alert reads): slug: (window, state)."""
    c = run_districts.c
    with LedgerHook().get_conn().connect() as db:
        return {slug: (window, state) for slug, window, state in db.execute(
            sa.select(c.district, c.window, c.state).where(c.run_id == run_id))}


@pytest.fixture
def ledger(tmp_path: Path, districts_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIRFLOW_CONN_ATTENDANCE_LEDGER",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")}))
    return tmp_path


def test_a_poll_syncs_each_district_never_read_over_its_trailing_window(ledger):
    """Nothing in the ledger: nothing to compare Clever's sync with, so Clever is not even asked."""
    targets, skipped = chosen(POLL)
    assert targets == {"shelbyville": TRAILING, "springfield": TRAILING} and skipped == {}
    assert recorded() == {"shelbyville": (TRAILING, "to sync"), "springfield": (TRAILING, "to sync")}


def test_the_daily_dags_windows_one_date_or_the_nightly_reconciliation(ledger):
    manual, _ = chosen(DAILY, moment=TICK, run_type="manual", run_id="manual__1")
    assert manual == {"shelbyville": "2026-11-19_2026-11-19", "springfield": "2026-11-19_2026-11-19"}
    nightly, _ = chosen(DAILY, moment=TICK)
    assert nightly == {"shelbyville": "2026-05-21_2026-11-19", "springfield": "2026-05-21_2026-11-19"}, (
        "reconcile_days: its 183 dates up to the run's")


def test_the_form_picks_districts_and_its_window_and_refuses_unknown_slugs_without_echoing_them(ledger):
    targets, _ = chosen(POLL, run_type="manual", run_id="manual__1",
                        params={"districts": ["springfield"], "start_date": "2026-11-02", "end_date": "2026-11-06"})
    assert targets == {"springfield": "2026-11-02_2026-11-06"}
    with pytest.raises(RunInputError) as refused:
        chosen(POLL, run_type="manual", run_id="manual__2",
               params={"districts": ["springfield", "ogdenville", "x" * 10_000]})
    assert str(refused.value) == (f"field 'districts': 2 not in {ledger / 'districts.yaml'}: 'ogdenville', "
                                  f"'{'x' * 40}'")
    assert recorded("manual__2") == {}, "refused before anything is recorded"


def watched(*moves: dict[str, str], uri: str = WATCH_ASSET_URI) -> dict:
    """An asset-triggered run's events, as the scheduler hands them to the task (only what the check reads of them:
    each event's asset and its extra; the real objects come from Airflow's database)."""
    asset = SimpleNamespace(uri=uri)
    return {uri: [SimpleNamespace(asset=asset, extra={"payload": {"districts": districts}}) for districts in moves]}


def test_an_event_run_syncs_only_the_districts_the_watcher_saw_move(ledger, caplog):
    events = watched({"springfield": "2026-11-23T14:30:00Z"},
                     {"springfield": "2026-11-23T15:30:00Z", "ogdenville": "2026-11-23T15:00:00Z"})
    events.update(watched({"shelbyville": "2026-11-23T15:00:00Z"}, uri="safety_shield://attendance/clever/x"))
    with caplog.at_level(logging.WARNING):
        targets, skipped = chosen(EVENTS, run_type="asset_triggered", events=events)
    assert targets == {"springfield": "2026-11-20_2026-11-23"}, (
        "the day of its newest moved sync in its time zone, and the lookback; not shelbyville: another asset's event")
    assert skipped == {}
    assert "the watcher named districts no longer in" in caplog.text and "ogdenville" in caplog.text


def in_another_run(dag_id: str, window: str = TRAILING) -> None:
    """An earlier run of `dag_id` whose check chose springfield (still to sync) and found nothing new for
    shelbyville."""
    progress.plan(LedgerHook().get_conn(), dag_id, OTHER_RUN, {"springfield": window, "shelbyville": window},
                  {"shelbyville": progress.NOTHING_NEW})


def test_a_district_still_syncing_in_another_poll_is_left_to_it(ledger):
    in_another_run(POLL)
    ti = TaskInstance({(POLL, OTHER_RUN): "running"})
    targets, skipped = chosen(EVENTS, ti, run_type="asset_triggered",
                              events=watched({"springfield": "2026-11-20T21:45:00Z",
                                              "shelbyville": "2026-11-20T22:45:00Z"}))
    assert targets == {"shelbyville": TRAILING}
    assert Skip.from_xcom(skipped["springfield"]) == Skip("in another run", Window.parse(TRAILING), run=OTHER_RUN)
    assert ti.asked == [(POLL, OTHER_RUN)]
    assert recorded()["springfield"] == (TRAILING, "in another run")


@pytest.mark.parametrize("state", ["success", "failed"])
def test_a_district_the_other_run_no_longer_syncs_is_synced(ledger, state):
    in_another_run(POLL)
    targets, skipped = chosen(POLL, TaskInstance({(POLL, OTHER_RUN): state}))
    assert targets == {"shelbyville": TRAILING, "springfield": TRAILING} and skipped == {}


@pytest.mark.parametrize("dag_id,window", [(POLL, "2026-11-09_2026-11-12"), (DAILY, TRAILING)])
def test_another_run_over_other_dates_or_of_the_daily_dag_does_not_hold_a_poll_back(ledger, dag_id, window):
    in_another_run(dag_id, window)
    ti = TaskInstance()  # were it asked about a run, it would raise: no state is known
    assert chosen(POLL, ti) == ({"shelbyville": TRAILING, "springfield": TRAILING}, {})
    assert ti.asked == []


def test_a_daily_run_syncs_its_dates_whatever_a_poll_is_doing(ledger):
    in_another_run(POLL, window="2026-11-19_2026-11-19")
    ti = TaskInstance()
    targets, skipped = chosen(DAILY, ti, moment=TICK, run_type="manual", run_id="manual__1")
    assert set(targets) == {"shelbyville", "springfield"} and skipped == {} and ti.asked == []


BROKEN = """
  - slug: ogdenville
    name: Ogdenville
    clever_district_id: not-a-clever-id
    safety_shield_district_id: "1003"
"""


@pytest.fixture
def broken_entry(ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = districts_variant(tmp_path / "broken.yaml", task_retries="0")
    path.write_text(path.read_text() + BROKEN)
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(path))
    return path


def test_a_broken_district_entry_is_left_out_named_and_the_others_run(broken_entry, caplog):
    with caplog.at_level(logging.INFO):
        targets, skipped = chosen(POLL)
    assert targets == {"shelbyville": TRAILING, "springfield": TRAILING}
    assert skipped == {} and "ogdenville" not in recorded(), "left out of the run: no task, nothing to skip"
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"1 district(s) of {broken_entry} left out of every DAG until fixed (the others run)")
    assert "district 'ogdenville': field 'clever_district_id'" in warning
    assert "attendance alert" not in caplog.text, "a poll does not send the notice"


def test_the_daily_run_sends_the_broken_entrys_notice_once_a_night(broken_entry, caplog):
    with caplog.at_level(logging.INFO):
        chosen(DAILY, moment=TICK, run_type="manual", run_id="manual__dry", params={"dry_run": True})
    assert "attendance alert" not in caplog.text, "a dry run pages nobody"
    with caplog.at_level(logging.INFO):
        targets, _ = chosen(DAILY, moment=TICK)
    assert set(targets) == {"shelbyville", "springfield"}
    assert "attendance alert '[Clever attendance] districts file: 1 district(s) left out' sent by" in caplog.text


# --- against Clever's sync (the sandbox): nothing new ------------------------------------------------------------

FRIDAY_SYNC = {"springfield": "2026-11-20T21:45:00Z", "shelbyville": "2026-11-20T22:45:00Z"}  # Clever's at NOW


def delivered(syncs: dict[str, str], window: str = TRAILING, status: str = "uploaded",
              run_id: str = "scheduled__before") -> None:
    """A run that read each district's window at `syncs`, recorded as the report records it."""
    entry = RunEntry(POLL, run_id, "scheduled")
    for slug, sync in syncs.items():
        entry.deliveries += [{"district": slug, "attendance_date": str(day), "window": window, "status": status,
                              "last_attendance_sync": sync} for day in Window.parse(window).dates()]
    write(LedgerHook().get_conn(), entry, 30)


@pytest.fixture
def clever(sandbox: dict, ledger: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("AIRFLOW_CONN_CLEVER_DEFAULT", json.dumps({
        "conn_type": "clever", "host": sandbox["clever_url"], "login": sandbox["clever_client_id"],
        "password": sandbox["clever_client_secret"], "extra": {"oauth_url": sandbox["clever_url"],
                                                               "backoff_seconds": 0.05}}))
    return sandbox


def test_a_window_read_at_clevers_current_sync_has_nothing_new(clever):
    delivered({"springfield": FRIDAY_SYNC["springfield"], "shelbyville": "2026-11-20T20:00:00Z"})
    targets, skipped = chosen(POLL)
    assert targets == {"shelbyville": TRAILING}, "shelbyville's sync moved since it was read"
    assert Skip.from_xcom(skipped["springfield"]) == Skip("nothing new", Window.parse(TRAILING),
                                                          sync=FRIDAY_SYNC["springfield"])
    assert recorded() == {"shelbyville": (TRAILING, "to sync"), "springfield": (TRAILING, "nothing new")}


def test_a_window_with_a_date_not_settled_is_synced_at_the_same_sync(clever):
    delivered(FRIDAY_SYNC)
    delivered({"springfield": FRIDAY_SYNC["springfield"]}, window="2026-11-20_2026-11-20",
              status="failed at upload", run_id="scheduled__failed")
    targets, skipped = chosen(POLL)
    assert targets == {"springfield": TRAILING} and set(skipped) == {"shelbyville"}


def test_force_and_a_dry_run_sync_what_has_nothing_new(clever):
    delivered(FRIDAY_SYNC)
    assert chosen(POLL)[0] == {}
    for option in ("force", "dry_run"):
        targets, skipped = chosen(POLL, run_type="manual", run_id=f"manual__{option}", params={option: True})
        assert targets == {"shelbyville": TRAILING, "springfield": TRAILING} and skipped == {}, option


def test_a_district_whose_sync_cannot_be_read_is_synced_and_the_others_still_compared(clever, tmp_path, monkeypatch,
                                                                                     caplog):
    """Its own extract retries Clever or fails with a notice; one district's error never hides the others'."""
    path = districts_variant(tmp_path / "unshared.yaml", task_retries="0")
    path.write_text(path.read_text().replace("84f02b8aba713f7e89be22b5", f'"{"0" * 24}"'))  # not shared with the app
    monkeypatch.setenv("ATTENDANCE_DISTRICTS_FILE", str(path))
    delivered(FRIDAY_SYNC)
    with caplog.at_level(logging.WARNING):
        targets, skipped = chosen(POLL)
    assert targets == {"shelbyville": TRAILING} and set(skipped) == {"springfield"}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("Clever district shelbyville: its sync could not be checked (")
    assert warning.endswith("Clever has no token: is the app shared with the district?): it is synced")
