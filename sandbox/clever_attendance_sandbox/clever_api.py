"""A Clever-compatible API (v3.1 roster and attendance preview) over synthetic districts."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import secrets
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from clever_attendance_sandbox.faults import CleverFaults, Dice, delay
from clever_attendance_sandbox.generator import RETENTION_DAYS, District, attendance_key, iso_z

ATTENDANCE_MAX_LIMIT = 1_000
STATUSES = {"present", "absent", "tardy"}


class CleverState:
    """Districts, credentials, tokens, clock, rate-limit counters and faults of one server."""

    def __init__(self, districts: list[District], now: datetime | None = None,
                 client_id: str | None = None, client_secret: str | None = None,
                 faults: CleverFaults | None = None) -> None:
        self.districts = {d.id: d for d in districts}
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.clocks: dict[str, datetime] = {}  # districts whose clock was moved on alone
        self.touches: dict[str, list[datetime]] = {}  # re-uploads of unchanged data, per district
        self.client_id = client_id or "sandbox-" + secrets.token_hex(4)
        self.client_secret = client_secret or secrets.token_urlsafe(18)
        self.faults = CleverFaults()
        self.set_faults(faults or self.faults)
        self.dice = Dice()
        self.stats: Counter = Counter()
        self._token_key = secrets.token_bytes(16)
        self._generation = Counter()
        self._by_token: dict[str, District] | None = None
        self._windows: dict[str, tuple[float, int]] = {}
        self._bursts = 0
        self._lock = threading.Lock()

    def set_faults(self, faults: CleverFaults) -> None:
        """Faults from now on; the feed breaks go to their districts' data, touched syncs are forgotten."""
        self.faults = faults
        self.touches = {}  # tests reset the sandbox between them by its faults
        for district in self.districts.values():
            district.breaks = tuple(b for b in faults.feed_breaks if b.district == district.id)

    def now_of(self, district: District) -> datetime:
        """The district's clock: the server's, unless the district's alone was moved."""
        return self.clocks.get(district.id, self.now)

    def last_attendance_sync(self, district: District) -> str | None:
        """The district's last upload by its clock: a scheduled one, or a later touch-sync."""
        now = self.now_of(district)
        syncs = [iso_z(t) for t in self.touches.get(district.id, []) if t <= now]
        syncs.append(district.last_attendance_sync(now) or "")
        return max(syncs) or None

    def token(self, district_id: str) -> str:
        gen = self._generation[district_id]
        return hashlib.blake2b(f"{district_id}:{gen}".encode(), key=self._token_key,
                               digest_size=20).hexdigest()

    def rotate(self, district_id: str | None = None) -> None:
        """Clever rotated the tokens: old ones answer 401 until looked up again."""
        for did in [district_id] if district_id else list(self.districts):
            self._generation[did] += 1
        self._by_token = None

    def district_of(self, token: str) -> District | None:
        if self._by_token is None:  # built once per rotation: a thousand districts are looked up per request
            self._by_token = {self.token(d.id): d for d in self.districts.values()}
        return self._by_token.get(token)

    def spend(self, token: str) -> tuple[bool, dict[str, str]]:
        """Count one request against the token's fixed window: (allowed, X-RateLimit headers)."""
        window = self.faults.rate_window
        now = time.time()
        start = math.floor(now / window) * window
        with self._lock:
            began, used = self._windows.get(token, (start, 0))
            used = used + 1 if began == start else 1
            self._windows[token] = (start, used)
        limit = self.faults.rate_limit
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - used)),
                   "X-RateLimit-Reset": str(math.ceil(start + window)), "X-RateLimit-Bucket": "district-token"}
        return used <= limit, headers

    def in_burst(self, number: int) -> bool:
        every = self.faults.burst_429_every
        return bool(every) and number % every < self.faults.burst_429_length


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _dump(body: Any, headers: dict, faults: CleverFaults, rng) -> Response:
    payload = json.dumps(body, separators=(",", ":")).encode()
    if rng.random() < faults.invalid_json_rate:
        return Response(payload[: len(payload) // 2], media_type="application/json", headers=headers)
    if rng.random() < faults.cut_rate:
        return StreamingResponse(_cut(payload), media_type="application/json",
                                 headers={**headers, "Content-Length": str(len(payload))})
    return Response(payload, media_type="application/json", headers=headers)


async def _cut(payload: bytes):
    yield payload[: len(payload) // 3]
    raise ConnectionAbortedError("sandbox fault: connection cut mid-body")


def _limit(request: Request, default: int, maximum: int, too_large: int) -> int | JSONResponse:
    raw = request.query_params.get("limit", str(default))
    try:
        limit = int(raw)
    except ValueError:
        return _error(400, "limit must be an integer")
    if limit < 1:
        return _error(400, "limit must be at least 1")
    if limit > maximum:
        return _error(too_large, f"limit must be at most {maximum}")
    return limit


def _cursor_key(token: str) -> tuple[str, str, str, str]:
    parts = base64.urlsafe_b64decode(token.encode() + b"==").decode().split("_")
    if len(parts) != 4:
        raise ValueError(token)
    date.fromisoformat(parts[0])
    return tuple(parts)  # type: ignore[return-value]


def _cursor(record: dict) -> str:
    return base64.urlsafe_b64encode("_".join(attendance_key(record)).encode()).decode().rstrip("=")


def _drift(record: dict, faults: CleverFaults, rng) -> dict:
    if faults.drift:
        record = {k: v for k, v in record.items() if k != "sis_id"}
        record["attendance_source"] = "sftp"
        record["ext"] = {"beta": True}
    if faults.missing_required_rate and rng.random() < faults.missing_required_rate:
        record = {k: v for k, v in record.items() if k != "attendance_status"}
    return record


def create_app(state: CleverState) -> FastAPI:
    app = FastAPI(title="Clever sandbox", docs_url=None, redoc_url=None)
    app.state.clever = state

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """Token, rate limit and faults in front of every data API call."""
        if not request.url.path.startswith("/v3.1/"):
            return await call_next(request)
        number, rng = state.dice.roll(state.faults.seed)
        request.state.rng = rng
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        district = state.district_of(token) if token else None
        state.stats["requests"] += 1
        if district is None:
            state.stats["401"] += 1
            return _error(401, "invalid or expired token")
        allowed, headers = state.spend(token)
        request.state.district = district
        request.state.headers = headers
        await delay(state.faults, rng)
        if not allowed:
            state.stats["429"] += 1
            return Response(status_code=429, headers=headers)
        if state.in_burst(number):
            state.stats["429"] += 1
            state.stats["burst_429"] += 1
            reset = math.ceil(time.time()) + 1
            return Response(status_code=429, headers={
                **headers, "X-RateLimit-Remaining": f"0, {headers['X-RateLimit-Remaining']}",
                "X-RateLimit-Reset": f"{reset}, {headers['X-RateLimit-Reset']}"})
        if rng.random() < state.faults.error_rate:
            status = rng.choice([500, 502, 503])
            state.stats[str(status)] += 1
            return _error(status, "sandbox fault", headers)
        state.stats["ok"] += 1
        return await call_next(request)

    def roster(request: Request, kind: str, items: list[dict]) -> Response:
        limit = _limit(request, 100, state.faults.roster_max_limit, 413)
        if isinstance(limit, Response):
            return limit
        after = request.query_params.get("starting_after")
        before = request.query_params.get("ending_before")
        ids = [item["id"] for item in items]
        if before:
            end = bisect_left(ids, before)
            page = items[max(0, end - limit): end]
        else:
            start = bisect_right(ids, after) if after else 0
            page = items[start: start + limit]
        links = [{"rel": "self", "uri": str(request.url.path) + "?" + str(request.url.query)}]
        if not after:
            links.append({"rel": "prev", "uri": f"/v3.1/{kind}?limit={limit}&ending_before={ids[0] if ids else ''}"})
        if len(page) == limit:
            links.append({"rel": "next", "uri": f"/v3.1/{kind}?limit={limit}&starting_after={page[-1]['id']}"})
        body = {"data": [{"data": item, "uri": f"/v3.1/{kind}/{item['id']}"} for item in page], "links": links}
        return _dump(body, request.state.headers, state.faults, request.state.rng)

    @app.get("/v3.1/districts")
    def districts(request: Request) -> Response:
        district = request.state.district
        return roster(request, "districts", [_district_body(state, district)])

    @app.get("/v3.1/districts/{district_id}")
    def district(request: Request, district_id: str) -> Response:
        if district_id != request.state.district.id:
            return _error(404, "district not found", request.state.headers)
        state.stats["district_reads"] += 1  # how a test knows the watcher has read every district
        body = {"data": _district_body(state, request.state.district),
                "links": [{"rel": "self", "uri": f"/v3.1/districts/{district_id}"}]}
        return _dump(body, request.state.headers, state.faults, request.state.rng)

    @app.get("/v3.1/schools")
    def schools(request: Request) -> Response:
        return roster(request, "schools", request.state.district.schools)

    @app.get("/v3.1/users")
    def users(request: Request) -> Response:
        role = request.query_params.get("role", "student")
        return roster(request, "users", request.state.district.students if role == "student" else [])

    @app.get("/v3.1/sections")
    def sections(request: Request) -> Response:
        return roster(request, "sections", request.state.district.sections)

    @app.get("/v3.1/courses")
    def courses(request: Request) -> Response:
        return roster(request, "courses", request.state.district.courses)

    @app.get("/v3.1/terms")
    def terms(request: Request) -> Response:
        return roster(request, "terms", request.state.district.terms)

    def attendance(request: Request, school_id: str, section_id: str | None) -> Response:
        district: District = request.state.district
        now = state.now_of(district)
        params = request.query_params
        limit = _limit(request, 100, ATTENDANCE_MAX_LIMIT, 400)
        if isinstance(limit, Response):
            return limit
        status = params.get("attendance_status")
        if status is not None and status not in STATUSES:
            return _error(400, "attendance_status must be present, absent or tardy", request.state.headers)
        try:
            first = date.fromisoformat(params.get("date_range_start") or
                                       (now.date() - timedelta(days=RETENTION_DAYS)).isoformat())
            last = date.fromisoformat(params.get("date_range_end") or now.date().isoformat())
            after = _cursor_key(params["starting_after"]) if params.get("starting_after") else None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return _error(400, "bad date_range or cursor", request.state.headers)
        if after and after[0] > last.isoformat():
            first = last + timedelta(days=1)
        elif after:
            first = max(first, date.fromisoformat(after[0]))
        page: list[dict] = []
        day = first
        while day <= last and len(page) <= limit:
            records = district.attendance(school_id, day, now)
            start = bisect_right(records, after, key=attendance_key) if after else 0
            for record in records[start:]:
                if section_id and record.get("section_id") != section_id:
                    continue
                if status and record["attendance_status"] != status:
                    continue
                page.append(record)
                if len(page) > limit:
                    break
            day += timedelta(days=1)
        more = len(page) > limit
        if more:
            # a page never ends between two versions of one record, so the cursor loses none;
            # a group larger than the limit goes out whole
            cut = limit
            while cut and attendance_key(page[cut - 1]) == attendance_key(page[limit]):
                cut -= 1
            page = page[:cut] if cut else page
        path = request.url.path
        links = [{"rel": "self", "uri": f"{path}?{request.url.query}"}]
        if more and page:
            query = {k: v for k, v in params.items() if k != "starting_after"}
            query.update(limit=str(limit), starting_after=_cursor(page[-1]))
            links.append({"rel": "next", "uri": path + "?" + "&".join(f"{k}={v}" for k, v in query.items())})
        data = [_drift(r, state.faults, request.state.rng) for r in page]
        return _dump({"data": data, "links": links}, request.state.headers, state.faults, request.state.rng)

    @app.get("/v3.1/attendance/schools/{school_id}")
    def school_attendance(request: Request, school_id: str) -> Response:
        if school_id not in {s["id"] for s in request.state.district.schools}:
            return _error(404, "school not found", request.state.headers)
        return attendance(request, school_id, None)

    @app.get("/v3.1/attendance/sections/{section_id}")
    def section_attendance(request: Request, section_id: str) -> Response:
        section = next((s for s in request.state.district.sections if s["id"] == section_id), None)
        if section is None:
            return _error(404, "section not found", request.state.headers)
        return attendance(request, section["school"], section_id)

    @app.get("/oauth/tokens")
    def tokens(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":") \
                if auth.lower().startswith("basic ") else ("", "", "")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if not (secrets.compare_digest(user, state.client_id)
                and secrets.compare_digest(password, state.client_secret)):
            return JSONResponse({"error": "invalid_client", "error_description": "bad client credentials"},
                                status_code=401)
        if request.query_params.get("owner_type") != "district":
            return JSONResponse({"error": "invalid_request", "error_description": "owner_type=district"},
                                status_code=400)
        wanted = request.query_params.get("district")
        data = [{"id": f"tok-{d.id}", "created": iso_z(state.now), "owner": {"type": "district", "id": d.id},
                 "access_token": state.token(d.id), "scopes": ["read:district_attendance", "read:sis"]}
                for d in state.districts.values() if wanted in (None, d.id)]
        return JSONResponse({"data": data, "links": [{"rel": "self", "uri": str(request.url.path)}]})

    @app.get("/admin/faults")
    def get_faults() -> dict:
        return state.faults.model_dump(mode="json")

    @app.put("/admin/faults")
    def put_faults(faults: CleverFaults) -> dict:
        state.set_faults(faults)
        return faults.model_dump(mode="json")

    @app.post("/admin/rotate-tokens")
    def rotate(district: str | None = None) -> dict:
        state.rotate(district)
        return {"rotated": district or "all"}

    @app.put("/admin/clock")
    def clock(body: dict) -> dict:
        """Move the clock: every district's, or with `district` (a Clever id) that district's alone."""
        moment = datetime.fromisoformat(body["now"])
        if body.get("district"):
            if body["district"] not in state.districts:
                return _error(404, "district not found")
            state.clocks[body["district"]] = moment
        else:
            state.now, state.clocks = moment, {}
        return {"now": iso_z(moment), "district": body.get("district")}

    @app.post("/admin/touch-sync")
    def touch_sync(body: dict) -> dict:
        """The district (a Clever id) re-uploads an unchanged file: its sync moves to its clock, its records stay."""
        district = state.districts.get(body.get("district"))
        if district is None:
            return _error(404, "district not found")
        state.touches.setdefault(district.id, []).append(state.now_of(district))
        return {"district": district.id, "last_attendance_sync": state.last_attendance_sync(district)}

    @app.get("/admin/stats")
    def stats() -> dict:
        return dict(state.stats)

    @app.delete("/admin/stats")
    def reset_stats() -> dict:
        state.stats.clear()
        return {}

    return app


def _district_body(state: CleverState, district: District) -> dict:
    return {"id": district.id, "name": district.spec.name, "last_sync": iso_z(state.now_of(district)),
            "last_attendance_sync": state.last_attendance_sync(district),
            "sis_type": "sftp", "state": "running", "mdr_number": None}

