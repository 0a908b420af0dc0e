"""CleverHook against the Clever stand-in over HTTP: paging, auth, rotation, faults, drift, exactness."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import requests

from clever_attendance.errors import CleverAuthError, CleverContractError, CleverUnavailableError
from clever_attendance.hooks.clever import CleverHook
from clever_attendance.hooks.clever_tokens import district_tokens, token_list_request, token_of
from clever_attendance.retry_policy import CleverAnswer
from clever_attendance_sandbox.process import set_faults
from clever_attendance_sandbox.testing import NOW, WEEK


def expected(district, start=WEEK[0], end=WEEK[1]) -> list[list[dict]]:
    """What Clever holds for every school of a district, school by school, in key order."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return [[r for d in days for r in district.attendance(s, d, NOW)] for s in district.school_ids()]


def extract(hook: CleverHook, district, start=WEEK[0], end=WEEK[1]) -> list[list[dict]]:
    return list(hook.iter_district_attendance(district.school_ids(), start, end))


def server_stats(info: dict) -> dict:
    return requests.get(info["clever_url"] + "/admin/stats", timeout=10).json()


@pytest.fixture
def fresh_stats(sandbox):
    requests.delete(sandbox["clever_url"] + "/admin/stats", timeout=10).raise_for_status()


def test_app_credentials_read_the_whole_roster(sandbox, districts, clever_conn):
    district = districts["springfield"]
    hook = CleverHook(district.id, clever_conn(sandbox))
    assert hook.get_district()["last_attendance_sync"] == "2026-11-20T21:45:00Z"
    assert list(hook.iter_schools()) == district.schools
    assert list(hook.iter_students()) == district.students
    shelby = CleverHook(districts["shelbyville"].id, clever_conn(sandbox))
    assert list(shelby.iter_sections()) == districts["shelbyville"].sections
    assert list(shelby.iter_courses()) == districts["shelbyville"].courses


def test_extraction_is_exactly_what_clever_holds(sandbox, districts, clever_conn, fresh_stats):
    for slug in ("springfield", "shelbyville"):
        hook = CleverHook(districts[slug].id, clever_conn(sandbox))
        assert extract(hook, districts[slug]) == expected(districts[slug])
        assert hook.stats.throttled == 0 and hook.stats.retries == 0
        assert hook.stats.records == sum(map(len, expected(districts[slug])))
    assert server_stats(sandbox).get("429", 0) == 0, "a normal extraction gets no 429 at all"


def test_status_filter_and_single_school(sandbox, districts, clever_conn):
    district = districts["springfield"]
    school = district.school_ids()[0]
    hook = CleverHook(district.id, clever_conn(sandbox))
    absent = list(hook.iter_attendance(school, *WEEK, status="absent"))
    assert absent == [r for r in expected(district)[0] if r["attendance_status"] == "absent"]


def test_a_district_token_held_directly(sandbox, districts, clever_conn):
    district = districts["tiny"]
    token = requests.get(sandbox["clever_url"] + "/oauth/tokens", timeout=10,
                         params={"owner_type": "district", "district": district.id},
                         auth=(sandbox["clever_client_id"], sandbox["clever_client_secret"])
                         ).json()["data"][0]["access_token"]
    hook = CleverHook(district.id, clever_conn(sandbox, mode=token))
    assert extract(hook, district) == expected(district)


def test_roster_413_halves_the_limit_and_pages_on(sandbox, districts, clever_conn):
    set_faults(sandbox, "clever", roster_max_limit=50)
    hook = CleverHook(districts["springfield"].id, clever_conn(sandbox))
    assert list(hook.iter_students()) == districts["springfield"].students
    assert hook.stats.pages == 300 // 39 + 1, "10000 halved down to 39, then every page followed"


def test_token_rotation_looks_the_token_up_once(sandbox, districts, clever_conn):
    district = districts["tiny"]
    hook = CleverHook(district.id, clever_conn(sandbox))
    hook.get_district()
    requests.post(sandbox["clever_url"] + "/admin/rotate-tokens", params={"district": district.id}, timeout=10)
    assert extract(hook, district) == expected(district)


def test_a_refused_token_is_an_auth_error_not_a_retry(sandbox, districts, clever_conn):
    district = districts["tiny"]
    held = CleverHook(district.id, clever_conn(sandbox, mode="not-a-token"))
    with pytest.raises(CleverAuthError, match=f"Clever credentials refused for district {district.id}"):
        held.get_district()
    assert held.stats.retries == 0
    bad_app = clever_conn({**sandbox, "clever_client_secret": "wrong"})
    with pytest.raises(CleverAuthError, match="app credentials refused"):
        CleverHook(district.id, bad_app).get_district()


def test_unknown_school_fails_at_once(sandbox, districts, clever_conn):
    hook = CleverHook(districts["tiny"].id, clever_conn(sandbox))
    with pytest.raises(CleverContractError, match="HTTP 404"):
        list(hook.iter_attendance("f" * 24, *WEEK))
    assert hook.stats.retries == 0


@pytest.mark.parametrize("faults", [
    {"error_rate": 0.3, "seed": 1},
    {"cut_rate": 0.3, "seed": 2},
    {"invalid_json_rate": 0.3, "seed": 3},
    {"latency_ms": 20, "jitter_ms": 40},
])
def test_transient_faults_are_retried_and_lose_nothing(sandbox, districts, clever_conn, faults):
    set_faults(sandbox, "clever", **faults)
    district = districts["shelbyville"]
    hook = CleverHook(district.id, clever_conn(sandbox, max_retries=10))
    assert extract(hook, district) == expected(district)
    if "latency_ms" not in faults:
        assert hook.stats.retries > 0


def test_persistent_server_errors_become_unavailable(sandbox, districts, clever_conn):
    set_faults(sandbox, "clever", error_rate=1.0)
    hook = CleverHook(districts["tiny"].id, clever_conn(sandbox, max_retries=2))
    with pytest.raises(CleverUnavailableError, match="3 attempts"):
        hook.get_district()
    assert hook.stats.retries == 2


def test_persistent_invalid_json_is_a_contract_error(sandbox, districts, clever_conn):
    set_faults(sandbox, "clever", invalid_json_rate=1.0)
    hook = CleverHook(districts["tiny"].id, clever_conn(sandbox, max_retries=2))
    with pytest.raises(CleverContractError, match="not JSON"):
        hook.get_district()


def test_429_bursts_are_waited_out(sandbox, districts, clever_conn):
    set_faults(sandbox, "clever", burst_429_every=4, burst_429_length=1)
    district = districts["shelbyville"]
    hook = CleverHook(district.id, clever_conn(sandbox))
    assert extract(hook, district) == expected(district)
    assert hook.stats.throttled > 0


def test_a_lower_rate_limit_is_read_from_the_headers(sandbox, districts, clever_conn, fresh_stats):
    set_faults(sandbox, "clever", rate_limit=12, rate_window=2, roster_max_limit=20)
    district = districts["springfield"]
    hook = CleverHook(district.id, clever_conn(sandbox))
    assert list(hook.iter_students()) == district.students
    assert hook.stats.requests > 24, "the reading spans several rate-limit windows"
    assert hook.stats.throttled == 0 and server_stats(sandbox).get("429", 0) == 0, \
        "the limiter slowed down before the token ran out"


def test_drift_unknown_fields_ignored_missing_required_passed_on(sandbox, districts, clever_conn):
    set_faults(sandbox, "clever", drift=True, missing_required_rate=0.1, seed=5)
    district = districts["springfield"]
    hook = CleverHook(district.id, clever_conn(sandbox))
    got = [r for school in extract(hook, district) for r in school]
    want = [r for school in expected(district) for r in school]
    assert len(got) == len(want), "no record is dropped"
    assert all(set(r) <= {*want[0], "section_id", "excuse_code", "sis_id"} for r in got)
    flagged = [r for r in got if r["attendance_status"] is None]
    assert flagged and hook.stats.missing_required == len(flagged)
    strip = [{k: v for k, v in r.items() if k not in ("sis_id", "attendance_status")} for r in got]
    assert strip == [{k: v for k, v in r.items() if k not in ("sis_id", "attendance_status")} for r in want]


def test_logs_carry_no_student_data_or_tokens(sandbox, districts, clever_conn, caplog, capsys):
    set_faults(sandbox, "clever", error_rate=0.2, cut_rate=0.1, seed=9)
    district = districts["springfield"]
    caplog.set_level(logging.INFO)  # Airflow's task log level
    hook = CleverHook(district.id, clever_conn(sandbox, max_retries=10))
    extract(hook, district)
    hook.log_totals()
    text = caplog.text + capsys.readouterr().out  # the task SDK logs through structlog to stdout
    assert "requests" in text and "retries" in text
    for student in district.students:
        for secret in (student["id"], student["roles"]["student"]["student_number"], student["name"]["last"]):
            assert not secret or secret not in text
    assert sandbox["clever_client_secret"] not in text and "Bearer" not in text


# --- the token lookup both Clever clients share, without a server --------------------------------------------------


def tokens(status: int, content: bytes) -> dict[str, object]:
    return district_tokens(CleverAnswer.read(status, {}, content), "d1")


def test_the_token_list_request_names_the_district_only_when_asked():
    assert token_list_request("https://clever.com", "id", "secret") == {
        "url": "https://clever.com/oauth/tokens", "params": {"owner_type": "district"}, "auth": ("id", "secret")}
    assert token_list_request("https://clever.com", "id", "secret", "d1")["params"] == {
        "owner_type": "district", "district": "d1"}


def test_the_token_list_is_read_into_each_districts_first_token():
    listed = (b'{"data": [{"owner": {"type": "district", "id": "d1"}, "access_token": "t1"},'
              b'{"owner": {"type": "district", "id": "d2"}, "access_token": "t2"},'
              b'{"owner": {"type": "district", "id": "d1"}, "access_token": "t1-later"}]}')
    assert tokens(200, listed) == {"d1": "t1", "d2": "t2"}
    assert token_of(tokens(200, listed), "d2") == "t2"


@pytest.mark.parametrize("status, content, error, detail", [
    (401, b'{"error": "invalid_client"}', CleverAuthError, "HTTP 401: app credentials refused"),
    (403, b"", CleverAuthError, "HTTP 403: app credentials refused"),
    (503, b"", CleverUnavailableError, "HTTP 503"),
    (200, b'{"data": [{"owner": "d1", "access_token": "t1"}]}', CleverContractError,
     "the answer is not a list of tokens"),
    (200, b'{"data": {"d1": "t1"}}', CleverContractError, "the answer is not a list of tokens"),
    (200, b'{"data": [{"owner": {"id": "d1"}}]}', CleverContractError, "the answer is not a list of tokens"),
    (200, b'{"data": [{"owner": {"id": "d1"}', CleverContractError, "the answer is not a list of tokens"),
])
def test_a_token_list_clever_refuses_or_breaks_is_its_clever_error(status, content, error, detail):
    with pytest.raises(error) as raised:
        tokens(status, content)
    assert (raised.value.district, raised.value.step, raised.value.detail) == (
        "d1", "looking up the district token", detail)


def test_no_list_at_all_is_unavailable_and_a_missing_or_odd_token_names_the_district():
    with pytest.raises(CleverUnavailableError, match="ConnectionError"):
        district_tokens(requests.ConnectionError("refused"), "d1")
    with pytest.raises(CleverAuthError, match="is the app shared with the district"):
        token_of({"d2": "t2"}, "d1")
    for odd in ("two words", "", 42, "t\r\n"):
        with pytest.raises(CleverContractError, match="not a bearer token"):
            token_of({"d1": odd}, "d1")
