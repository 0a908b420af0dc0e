"""A thousand districts and more: the DAGs keep the shape of three, as the API server serves it to the grid; a
run past Airflow's default map length starts every district; and Airflow's own UI, in a real browser, shows that
run and finds any district's instance in it."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote

import pytest
import requests

from clever_attendance_sandbox.local_airflow import answers, free_port, serving_env, stop, wait_for
from clever_attendance_sandbox.testing import copies_file, load_dag
from clever_attendance_sandbox.wiring import AIRFLOW, airflow

DAG_IDS = ("clever_attendance", "clever_attendance_daily", "clever_attendance_events")
GROUP = ["district.sync"]
COUNT = 1025  # one more than Airflow's default max_map_length (1,024)


@pytest.mark.timeout(300)
def test_a_thousand_districts_make_one_mapped_group_in_the_grid(airflow_db, tmp_path, monkeypatch):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    districts = copies_file(tmp_path / "districts.yaml", 1000)
    # reserialize, like the dag-processor, skips a DAG serialized less than min_serialized_dag_update_interval
    # (30 s) ago, and an earlier test may just have serialized the shipped file's DAGs: no interval here
    env = {**os.environ, "ATTENDANCE_DISTRICTS_FILE": str(districts),
           "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0"}
    airflow(env, "dags", "reserialize")  # as the dag-processor does: the DAGs, serialized into the database
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    client = TestClient(create_app(apps="core"))
    for dag_id in DAG_IDS:
        answer = client.get(f"/ui/grid/structure/{dag_id}")
        assert answer.status_code == 200, answer.text
        shape = [(node["id"], node.get("is_mapped", False), [c["id"] for c in node.get("children") or []])
                 for node in answer.json()]
        assert shape == [("check", False, []), ("district", True, GROUP), ("report", False, [])], dag_id
        params = client.get(f"/api/v2/dags/{dag_id}/details").json()["params"]
        slugs = params["districts"]["schema"]["items"]["enum"]
        assert len(slugs) == 1000 and slugs[0] == "tiny_0001", "the run form still offers every district"
    tasks = client.get("/api/v2/dags/clever_attendance/tasks").json()
    assert tasks["total_entries"] == 3, "check, district.sync, report"


class BigRun(NamedTuple):
    run_id: str
    env: dict[str, str]  # what the run's tasks read: its districts file, ledger and staging root


@pytest.fixture(scope="module")
def big_run(airflow_db, tmp_path_factory) -> BigRun:
    """One run of 1,025 districts with something new, made through Airflow's runner in the tests' metadata
    database and shared by this module's tests (it takes a minute). The check runs for real and maps every
    district; the districts' own steps and the report are marked done instead of run (mark_success_pattern), as a
    thousand real syncs would outlast a test."""
    work = tmp_path_factory.mktemp("big_run")
    env = {"ATTENDANCE_DISTRICTS_FILE": str(copies_file(work / "districts.yaml", COUNT)),
           "AIRFLOW_CONN_ATTENDANCE_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(work / "ledger.db")}),
           "ATTENDANCE_STAGING_URL": str(work / "staging")}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        dag_run = load_dag("clever_attendance").test(logical_date=datetime(2026, 11, 20, 22, tzinfo=UTC),
                                                      mark_success_pattern=r"district\..*|report")
    return BigRun(dag_run.run_id, env)


@pytest.mark.timeout(600)
def test_a_run_with_more_districts_than_airflows_default_map_length_starts_every_one(big_run):
    """1,025 districts with something new, one more than Airflow's default max_map_length (1,024), which failed
    such a run at its check ("pushed value is too large to map"). What is proven is that every district's instance
    is made."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        found = session.query(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).filter(
            TaskInstance.run_id == big_run.run_id).all()
    assert ("check", -1, "success") in found
    assert sorted(n for task, n, _ in found if task == "district.sync") == list(range(COUNT))


SHOTS = "airflow-ui-1025"  # the prefix of this test's screenshots and timings in artifacts()


@pytest.mark.timeout(600)
def test_airflows_ui_shows_the_run_of_1025_districts_and_finds_any_one_of_them(big_run, tmp_path):
    """Airflow's own UI (its API server alone, on the module's run) in Chromium, as a person uses it: the DAG's
    grid shows the run, and its district cell leads to the group's 1,025 instances; the run's page counts its 1,027
    instances and draws its graph; the sync's mapped list counts 1,025 instances, 50 to a page; a district is
    found by its name in the list's filter and opened at its map index. Screenshots, the time each view took to
    show and the time of its main API calls alone (measured, never asserted) go to artifacts(), for
    docs/performance.md."""
    from selenium.webdriver.common.by import By

    from clever_attendance_sandbox.browser import artifacts, chromium, sign_in

    slugs = _label_like_a_real_run(big_run.run_id)
    index = 512
    run_path = f"/dags/clever_attendance/runs/{quote(big_run.run_id, safe='')}"
    env = {**os.environ, **big_run.env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False"}
    timings: dict[str, dict] = {}
    with _api_server(env, tmp_path) as base, chromium() as browser:
        def shot(name: str) -> None:
            browser.save_screenshot(str(artifacts() / f"{SHOTS}-{name}.png"))

        def view(name: str, act: Callable[[], object], what: str, shown: Callable[[], object]) -> object:
            return _timed(browser, timings, name, act, what, shown)

        sign_in(browser, base, "admin", _password(env))
        cell = f"grid-{big_run.run_id}-district"
        href = view("grid", lambda: browser.get(base + "/dags/clever_attendance"),
                    "the run's district cell in the grid", lambda: browser.execute_script(
                        "const a = document.querySelector(`[data-testid='${arguments[0]}']`);"
                        "return a && a.getAttribute('href');", cell))
        assert href == f"/dags/clever_attendance/runs/{big_run.run_id}/tasks/group/district"
        shot("grid")
        view("grid: the run's district cell", lambda: browser.find_element(By.ID, cell).click(),
             "the district group's page with its 1,025 instances",
             lambda: f"Total Success\n{COUNT}\n" in _text(browser))

        view("run: task instances", lambda: browser.get(base + run_path), "the run's 1,027 task instances",
             lambda: f"{COUNT + 2:,} Task Instances" in _text(browser))
        browser.find_element(By.CSS_SELECTOR, "[data-testid='expand-all-button']").click()
        wait_for("the grid's district.sync row, the group expanded", lambda: browser.find_elements(
            By.CSS_SELECTOR, "[data-testid='task-district-sync']"), 30, every=0.2)
        shot("run")
        view("run: graph", lambda: browser.find_element(By.CSS_SELECTOR, "[title^='Show Graph']").click(),
             "the run's graph with the district group's sync", lambda: browser.find_elements(
                 By.CSS_SELECTOR, ".react-flow__node[data-id='district.sync']"))
        shot("graph")
        browser.find_element(By.CSS_SELECTOR, "[data-testid='grid-view-button']").click()

        mapped = f"{run_path}/tasks/district.sync/mapped"
        view("mapped list: first page", lambda: browser.get(base + mapped), "the sync's 1,025 mapped instances",
             lambda: f"{COUNT:,} Task Instances" in _text(browser) and len(_rows(browser)) == 50)
        first = _rows(browser)
        assert set(first) <= set(slugs), "each instance is shown by its district"
        shot("mapped")
        view("mapped list: next page",
             lambda: browser.find_element(By.CSS_SELECTOR, "[aria-label='Next page']").click(),
             "the mapped list's second page", lambda: (lambda rows: len(rows) == 50 and rows[0] != first[0])(
                 _rows(browser)))
        assert not set(first) & set(_rows(browser)), "the second page holds 50 other districts"

        browser.find_elements(By.CSS_SELECTOR, "[data-testid='add-filter-button']")[-1].click()
        wait_for("the filter menu's Rendered Map Index", lambda: [
            item for item in browser.find_elements(By.CSS_SELECTOR, "[role='menuitem']")
            if item.text == "Rendered Map Index"], 30, every=0.2)[0].click()
        field = wait_for("the filter's text field", lambda: (lambda e: e.tag_name == "input" and e)(
            browser.switch_to.active_element), 30, every=0.2)
        view("mapped list: filter by name", lambda: field.send_keys(slugs[index]),
             f"the mapped list filtered to {slugs[index]}", lambda: "1 Task Instance\n" in _text(browser)
             and _rows(browser) == [slugs[index]])
        shot("search")
        view("instance: opened from the list", lambda: browser.find_element(By.LINK_TEXT, slugs[index]).click(),
             f"the instance page of {slugs[index]}", lambda: unquote(browser.current_url).endswith(
                 f"{unquote(mapped)}/{index}") and f"district.sync [{slugs[index]}]" in _text(browser))
        shot("instance")
        token = {c["name"]: c["value"] for c in browser.get_cookies()}["_token"]
        run_api = f"/api/v2/dags/clever_attendance/dagRuns/{quote(big_run.run_id, safe='')}"
        alone = _alone(base, token, [
            run_api, f"{run_api}/taskInstances?limit=50&order_by=-id",
            f"{run_api}/taskInstances?task_id=district.sync&limit=50&order_by=-id",
            f"/ui/grid/ti_summaries/clever_attendance?run_ids={quote(big_run.run_id, safe='')}"])
    (artifacts() / f"{SHOTS}-timings.json").write_text(json.dumps({"views": timings, "api_alone_ms": alone},
                                                                  indent=1))


@contextmanager
def _api_server(env: dict[str, str], workdir: Path, seconds: float = 120) -> Iterator[str]:
    """Airflow's API server alone (the UI and its REST API) on a free port, stopped whatever happens; its URL.
    local_airflow starts one only among all of Airflow's components, which a finished run does not need."""
    port = free_port()
    env = serving_env(env, port)
    log = workdir / "api-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def up() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"the API server exited {process.returncode}: {log.read_text()[-3000:]}")
                return answers(port)

            wait_for(f"the API server on port {port} (log: {log})", up, seconds, every=0.5)
            yield env["AIRFLOW__API__BASE_URL"]
        finally:
            stop(process)


def _password(env: dict[str, str], user: str = "admin") -> str:
    """The password the simple auth manager generated for a user, at the API server's start."""
    return json.loads((Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated").read_text())[user]


def _label_like_a_real_run(run_id: str) -> list[str]:
    """Name each district instance of the run by its district, as its map_index_template does when it runs (the
    runner's mark_success sets a state without running anything): the UI shows and filters instances by that
    name. The district of each map index is the check's, in order; returns them."""
    import sqlalchemy as sa
    from airflow.models import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    table = TaskInstance.__table__
    with create_session() as session:
        value = session.scalar(sa.select(XComModel.value).where(
            XComModel.dag_id == "clever_attendance", XComModel.run_id == run_id, XComModel.task_id == "check",
            XComModel.key == "return_value"))
        slugs = [target["slug"] for target in (json.loads(value) if isinstance(value, str) else value)]
        session.execute(sa.update(table).where(
            table.c.dag_id == "clever_attendance", table.c.run_id == run_id, table.c.task_id.like("district.%"),
            table.c.map_index == sa.bindparam("index")).values(rendered_map_index=sa.bindparam("slug")),
            [{"index": n, "slug": slug} for n, slug in enumerate(slugs)])
    assert len(slugs) == COUNT
    return slugs


API_CALLS = """return performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/api/v2/') || e.name.includes('/ui/'))
    .map(e => [decodeURIComponent(new URL(e.name).pathname + new URL(e.name).search), Math.round(e.duration),
               e.decodedBodySize]);"""


def _timed(browser, timings: dict[str, dict], name: str, act: Callable[[], object], what: str,
           shown: Callable[[], object]) -> object:
    """Do `act` (open a page, click, type), wait for `shown` (failing with `what` after browser.WAIT seconds),
    and record the wall time until then and the API calls made meanwhile (each: path, ms, bytes)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    from clever_attendance_sandbox.browser import WAIT

    browser.execute_script("performance.clearResourceTimings()")
    started = time.monotonic()
    act()
    try:
        found = WebDriverWait(browser, WAIT, poll_frequency=0.1, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(lambda _: shown())
    except TimeoutException:
        raise TimeoutError(f"timed out after {WAIT}s waiting for {what} at {browser.current_url}; the page "
                           f"showed: {_text(browser)[:1500]!r}") from None
    timings[name] = {"shown_s": round(time.monotonic() - started, 2), "api": browser.execute_script(API_CALLS)}
    return found


def _text(browser) -> str:
    return browser.execute_script("return document.body.innerText")


def _rows(browser) -> list[str]:
    """The names (map index labels) in the shown task instance table, top to bottom."""
    return browser.execute_script("return Array.from(document.querySelectorAll('tbody tr'))"
                                  ".map(r => r.cells[1].innerText.trim())")


def _alone(base: str, token: str, paths: list[str]) -> dict[str, float]:
    """Each API call by itself, nothing else asking the server: the median of 3, in ms."""
    took: dict[str, float] = {}
    for path in paths:
        times = []
        for _ in range(3):
            started = time.monotonic()
            answer = requests.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            times.append((time.monotonic() - started) * 1000)
            assert answer.status_code == 200, (path, answer.text[:300])
        took[path] = round(statistics.median(times))
    return took
