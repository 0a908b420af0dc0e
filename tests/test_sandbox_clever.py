"""Contract tests of the Clever stand-in, over HTTP, against docs/clever-api.md."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
import requests

from clever_attendance_sandbox.generator import attendance_key, is_school_day
from clever_attendance_sandbox.process import move_clock, set_faults, touch_sync
from clever_attendance_sandbox.testing import NOW, WEEK


def token(info: dict, slug: str) -> str:
    answer = requests.get(info["clever_url"] + "/oauth/tokens",
                          params={"owner_type": "district", "district": info["districts"][slug]},
                          auth=(info["clever_client_id"], info["clever_client_secret"]), timeout=10)
    answer.raise_for_status()
    return answer.json()["data"][0]["access_token"]


def get(info: dict, slug: str, path: str, **params) -> requests.Response:
    return requests.get(info["clever_url"] + path, params=params, timeout=10,
                        headers={"Authorization": f"Bearer {token(info, slug)}"})


def follow(info: dict, slug: str, path: str, **params) -> tuple[list[dict], int]:
    """Every item of a listing by its next links, and the number of pages read."""
    headers = {"Authorization": f"Bearer {token(info, slug)}"}
    answer = requests.get(info["clever_url"] + path, params=params, headers=headers, timeout=10)
    items, pages = [], 0
    while True:
        answer.raise_for_status()
        body = answer.json()
        pages += 1
        items.extend(body["data"])
        nxt = [link["uri"] for link in body["links"] if link["rel"] == "next"]
        if not body["data"] or not nxt:
            return items, pages
        assert nxt[0].startswith("/v3.1/"), "next links are relative"
        answer = requests.get(info["clever_url"] + nxt[0], headers=headers, timeout=10)


def test_oauth_tokens_need_client_credentials(sandbox):
    url = sandbox["clever_url"] + "/oauth/tokens"
    bad = requests.get(url, params={"owner_type": "district"}, auth=("x", "y"), timeout=10)
    assert bad.status_code == 401
    assert set(bad.json()) == {"error", "error_description"}
    every = requests.get(url, params={"owner_type": "district"}, timeout=10,
                         auth=(sandbox["clever_client_id"], sandbox["clever_client_secret"])).json()
    owners = {t["owner"]["id"] for t in every["data"]}
    assert owners == set(sandbox["districts"].values())
    one = every["data"][0]
    assert set(one) >= {"id", "created", "owner", "access_token", "scopes"}
    assert one["owner"]["type"] == "district"


def test_every_call_needs_a_token_that_sees_only_its_district(sandbox):
    url = sandbox["clever_url"] + "/v3.1/schools"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    other = sandbox["districts"]["shelbyville"]
    assert get(sandbox, "springfield", f"/v3.1/districts/{other}").status_code == 404
    theirs = get(sandbox, "shelbyville", "/v3.1/schools").json()["data"][0]["data"]["id"]
    assert get(sandbox, "springfield", f"/v3.1/attendance/schools/{theirs}").status_code == 404


def test_district_carries_last_attendance_sync(sandbox, districts):
    body = get(sandbox, "springfield", f"/v3.1/districts/{sandbox['districts']['springfield']}").json()
    assert body["data"]["last_attendance_sync"] == districts["springfield"].last_attendance_sync(NOW)
    assert body["data"]["last_attendance_sync"] == "2026-11-20T21:45:00Z"


def test_touch_sync_moves_the_sync_and_no_record(sandbox, districts):
    """A district re-uploading an unchanged file: last_attendance_sync moves to its clock, every page stays."""
    district, other = districts["springfield"], districts["shelbyville"]

    def sync(d=district) -> str:
        return get(sandbox, d.spec.slug, f"/v3.1/districts/{d.id}").json()["data"]["last_attendance_sync"]

    def pages() -> list[bytes]:
        """Every attendance page of the district, as sent."""
        headers = {"Authorization": f"Bearer {token(sandbox, 'springfield')}"}
        out = []
        for school in district.school_ids():
            uri = f"/v3.1/attendance/schools/{school}?limit=1000"
            while uri:
                answer = requests.get(sandbox["clever_url"] + uri, headers=headers, timeout=10)
                answer.raise_for_status()
                out.append(answer.content)
                body = answer.json()
                nxt = [link["uri"] for link in body["links"] if link["rel"] == "next"]
                uri = nxt[0] if body["data"] and nxt else None
        return out

    before = pages()
    assert len(before) > 3 * 5 and sync() == "2026-11-20T21:45:00Z"
    assert touch_sync(sandbox, district.id) == sync() == "2026-11-20T23:00:00Z", "the clock, NOW"
    assert pages() == before
    assert sync(other) == other.last_attendance_sync(NOW), "other districts' syncs stay"
    monday = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 08:00 in New York, before the first upload
    try:
        move_clock(sandbox, monday, district.id)
        assert sync() == "2026-11-20T23:00:00Z", "the re-upload is the latest"
        assert touch_sync(sandbox, district.id) == sync() == "2026-11-23T13:00:00Z", "the district's own clock"
    finally:
        move_clock(sandbox, NOW)
    set_faults(sandbox, "clever")
    assert sync() == "2026-11-20T21:45:00Z", "reset with the faults"
    unknown = requests.post(sandbox["clever_url"] + "/admin/touch-sync", json={"district": "nope"}, timeout=10)
    assert unknown.status_code == 404


def test_roster_lists_are_wrapped_paged_and_ascending(sandbox, districts):
    first = get(sandbox, "springfield", "/v3.1/users", role="student").json()
    assert len(first["data"]) == 100, "limit defaults to 100"
    item = first["data"][0]
    assert item["uri"] == f"/v3.1/users/{item['data']['id']}"
    rels = [link["rel"] for link in first["links"]]
    assert "prev" in rels, "Clever sends a prev link even on the first page"
    nxt = next(link["uri"] for link in first["links"] if link["rel"] == "next")
    assert nxt == f"/v3.1/users?limit=100&starting_after={first['data'][-1]['data']['id']}"
    items, pages = follow(sandbox, "springfield", "/v3.1/users", role="student")
    ids = [i["data"]["id"] for i in items]
    assert ids == sorted(ids) == [s["id"] for s in districts["springfield"].students]
    assert pages == 4, "300 students: three full pages, then an empty one ends the listing"
    for kind, expected in [("schools", districts["shelbyville"].schools),
                           ("sections", districts["shelbyville"].sections),
                           ("courses", districts["shelbyville"].courses),
                           ("terms", districts["shelbyville"].terms)]:
        got, _ = follow(sandbox, "shelbyville", f"/v3.1/{kind}", limit=7)
        assert [i["data"] for i in got] == expected, kind


def test_roster_limit_above_10000_is_413(sandbox):
    assert get(sandbox, "springfield", "/v3.1/users", limit=10000).status_code == 200
    too_big = get(sandbox, "springfield", "/v3.1/users", limit=10001)
    assert too_big.status_code == 413
    assert "message" in too_big.json()


def test_attendance_is_unwrapped_inclusive_and_complete(sandbox, districts):
    district = districts["shelbyville"]
    school = district.school_ids()[0]
    start, end = WEEK
    items, pages = follow(sandbox, "shelbyville", f"/v3.1/attendance/schools/{school}",
                          date_range_start=start.isoformat(), date_range_end=end.isoformat(), limit=1000)
    expected = [r for day in range(5) for r in district.attendance(
        school, start.replace(day=start.day + day), NOW)]
    assert items == expected
    assert {i["attendance_date"] for i in items} == {"2026-11-16", "2026-11-17", "2026-11-18",
                                                     "2026-11-19", "2026-11-20"}
    assert [attendance_key(i) for i in items] == sorted(attendance_key(i) for i in items)
    assert pages >= 3
    assert "data" not in items[0], "attendance items are not wrapped"


def test_attendance_cursor_is_opaque_and_pages_never_split_versions(sandbox, districts):
    district = districts["springfield"]
    school = district.school_ids()[0]
    one_day = {"date_range_start": "2026-11-17", "date_range_end": "2026-11-17"}
    body = get(sandbox, "springfield", f"/v3.1/attendance/schools/{school}", limit=10, **one_day).json()
    nxt = next(link["uri"] for link in body["links"] if link["rel"] == "next")
    cursor = nxt.split("starting_after=")[1].split("&")[0]
    decoded = base64.urlsafe_b64decode(cursor + "==").decode()
    assert decoded == "_".join(attendance_key(body["data"][-1]))
    for limit in (1, 2, 3, 7):
        got, _ = follow(sandbox, "springfield", f"/v3.1/attendance/schools/{school}", limit=limit, **one_day)
        assert got == district.attendance(school, WEEK[0].replace(day=17), NOW), limit


def test_attendance_filters_and_limits(sandbox, districts):
    school = districts["springfield"].school_ids()[1]
    path = f"/v3.1/attendance/schools/{school}"
    window = {"date_range_start": "2026-11-18", "date_range_end": "2026-11-19"}
    absent, _ = follow(sandbox, "springfield", path, attendance_status="absent", limit=1000, **window)
    assert absent and {a["attendance_status"] for a in absent} == {"absent"}
    assert {a["attendance_date"] for a in absent} <= {"2026-11-18", "2026-11-19"}
    for bad in (0, 1001, "x"):
        assert get(sandbox, "springfield", path, limit=bad, **window).status_code == 400
    assert get(sandbox, "springfield", path, attendance_status="late").status_code == 400
    assert get(sandbox, "springfield", path, starting_after="!!!").status_code == 400


def test_section_attendance(sandbox, districts):
    district = districts["shelbyville"]
    section = district.sections[0]
    got, _ = follow(sandbox, "shelbyville", f"/v3.1/attendance/sections/{section['id']}",
                    date_range_start="2026-11-16", date_range_end="2026-11-16", limit=1000)
    assert got and {g["section_id"] for g in got} == {section["id"]}
    assert len(got) == len([r for r in district.attendance(section["school"], WEEK[0], NOW)
                            if r.get("section_id") == section["id"]])


def test_no_attendance_on_holidays_weekends_or_past_retention(sandbox, districts):
    school = districts["springfield"].school_ids()[0]
    path = f"/v3.1/attendance/schools/{school}"
    weekend = get(sandbox, "springfield", path, date_range_start="2026-11-21", date_range_end="2026-11-22")
    assert weekend.json()["data"] == []
    old = get(sandbox, "springfield", path, date_range_start="2026-05-01", date_range_end="2026-05-08")
    assert old.json()["data"] == [], "older than six months"
    assert not is_school_day(WEEK[0].replace(day=26)), "Thanksgiving"


def test_rate_limit_headers_and_429(sandbox):
    answer = get(sandbox, "tiny", "/v3.1/schools")
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Bucket"):
        assert header in answer.headers
    assert answer.headers["X-RateLimit-Limit"] == "1200"
    set_faults(sandbox, "clever", rate_limit=3)
    tok = token(sandbox, "tiny")
    statuses = [requests.get(sandbox["clever_url"] + "/v3.1/schools", timeout=10,
                             headers={"Authorization": f"Bearer {tok}"}) for _ in range(4)]
    limited = statuses[-1]
    assert limited.status_code == 429 and limited.content == b""
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > time.time() - 1


def test_fault_server_errors(sandbox):
    set_faults(sandbox, "clever", error_rate=1.0, seed=7)
    codes = {get(sandbox, "tiny", "/v3.1/schools").status_code for _ in range(12)}
    assert codes <= {500, 502, 503} and len(codes) >= 2


def test_fault_latency(sandbox):
    set_faults(sandbox, "clever", latency_ms=300)
    tok = token(sandbox, "tiny")
    started = time.monotonic()
    requests.get(sandbox["clever_url"] + "/v3.1/schools", headers={"Authorization": f"Bearer {tok}"},
                 timeout=10)
    assert time.monotonic() - started >= 0.3, "the injected delay is a floor, not a measurement"


def test_fault_429_burst_has_comma_separated_buckets(sandbox):
    set_faults(sandbox, "clever", burst_429_every=2, burst_429_length=1)
    answers = [get(sandbox, "tiny", "/v3.1/schools") for _ in range(4)]
    burst = next(a for a in answers if a.status_code == 429)
    assert "," in burst.headers["X-RateLimit-Reset"] and "," in burst.headers["X-RateLimit-Remaining"]


def test_fault_connection_cut_mid_body(sandbox):
    set_faults(sandbox, "clever", cut_rate=1.0)
    with pytest.raises(requests.exceptions.RequestException):
        get(sandbox, "tiny", "/v3.1/users").json()


def test_fault_invalid_json(sandbox):
    set_faults(sandbox, "clever", invalid_json_rate=1.0)
    answer = get(sandbox, "tiny", "/v3.1/users")
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)


def test_fault_schema_drift(sandbox, districts):
    set_faults(sandbox, "clever", drift=True, missing_required_rate=0.5, seed=3)
    school = districts["tiny"].school_ids()[0]
    data = get(sandbox, "tiny", f"/v3.1/attendance/schools/{school}", date_range_start="2026-11-16",
               date_range_end="2026-11-16").json()["data"]
    assert all("attendance_source" in r and "sis_id" not in r for r in data)
    missing = [r for r in data if "attendance_status" not in r]
    assert 0 < len(missing) < len(data)


def test_fault_token_rotation(sandbox):
    old = token(sandbox, "tiny")
    url = sandbox["clever_url"] + "/v3.1/schools"
    assert requests.get(url, headers={"Authorization": f"Bearer {old}"}, timeout=10).status_code == 200
    requests.post(sandbox["clever_url"] + "/admin/rotate-tokens",
                  params={"district": sandbox["districts"]["tiny"]}, timeout=10).raise_for_status()
    assert requests.get(url, headers={"Authorization": f"Bearer {old}"}, timeout=10).status_code == 401
    new = token(sandbox, "tiny")
    assert new != old
    assert requests.get(url, headers={"Authorization": f"Bearer {new}"}, timeout=10).status_code == 200


def test_fault_broken_feeds_serve_a_school_all_absent_missing_or_partial(sandbox, districts):
    """A district's SFTP feed broken for one school and date: Clever serves what it got, as the truth holds it."""
    from dataclasses import replace

    from clever_attendance_sandbox.faults import FeedBreak

    district = districts["springfield"]
    first, second, third = district.school_ids()
    day = "2026-11-18"
    breaks = [FeedBreak(district=district.id, school=first, date=day, kind="all_absent"),
              FeedBreak(district=district.id, school=second, date=day, kind="missing"),
              FeedBreak(district=district.id, school=third, date=day, kind="partial", share=0.25)]
    set_faults(sandbox, "clever", feed_breaks=[b.model_dump(mode="json") for b in breaks])
    broken = replace(district, breaks=tuple(breaks))

    def served(school: str, on: str = day) -> list[dict]:
        return follow(sandbox, "springfield", f"/v3.1/attendance/schools/{school}", date_range_start=on,
                      date_range_end=on, limit=1000)[0]

    whole = {school: district.attendance(school, WEEK[0].replace(day=18), NOW) for school in (first, third)}
    absent = served(first)
    assert len(absent) == len(whole[first]) and {r["attendance_status"] for r in absent} == {"absent"}
    assert served(second) == []
    assert len(served(third)) == round(len(whole[third]) * 0.25) and served(third) == whole[third][:len(served(third))]
    for school in (first, second, third):
        assert served(school) == broken.attendance(school, WEEK[0].replace(day=18), NOW), "the truth's records"
        assert served(school, "2026-11-17") == district.attendance(school, WEEK[0].replace(day=17), NOW), \
            "other dates are whole"
