"""A stand-in for Safety Shield's dataFileUpload API: auth, idempotency, limits, async import."""

from __future__ import annotations

import hashlib
import json
import queue
import secrets
import threading
import time
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from clever_attendance_sandbox.faults import Dice, UploadFaults
from clever_attendance_sandbox.upload_store import FileRefusedError, Store, imported_rows, validate

CSV_TYPES = {"text/csv", "application/csv"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class UploadState:
    """The store, the API key, the faults, and the workers that import each district's files one at a time, in the
    order posted (districts do not wait on one another)."""

    def __init__(self, db_path: str, api_key: str | None = None, faults: UploadFaults | None = None) -> None:
        self.store = Store(db_path)
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.faults = faults or UploadFaults()
        self.dice = Dice()
        self.jobs: dict[str, queue.Queue] = {}
        self.files: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def queue(self, district_id: str, upload_id: str) -> None:
        """Import the upload after the district's earlier ones."""
        with self._lock:
            if district_id not in self.jobs:
                self.jobs[district_id] = queue.Queue()
                threading.Thread(target=self._work, args=(self.jobs[district_id],), daemon=True,
                                 name=f"sandbox-import-{district_id}").start()
        self.jobs[district_id].put(upload_id)

    def _work(self, jobs: queue.Queue) -> None:
        while True:
            upload_id = jobs.get()
            self.store.execute("update uploads set status='processing' where upload_id=?", (upload_id,))
            time.sleep(self.faults.import_seconds)
            content = self.files.pop(upload_id)
            district_id = self.store.upload(upload_id)["districtId"]
            try:
                good, result = validate(content)
            except FileRefusedError as fault:
                self._finish(upload_id, "failed", 0, 0, 0, [{"line": 0, "column": "", "message": str(fault)}])
                continue
            imported = len(good)
            self.store.upsert(district_id, good)
            self._finish(upload_id, "completed", result.received, imported, result.rejected, result.errors)

    def _finish(self, upload_id: str, status: str, received: int, imported: int, rejected: int,
                errors: list[dict]) -> None:
        self.store.execute(
            "update uploads set status=?, rows_received=?, rows_imported=?, rows_rejected=?, errors=?,"
            " completed_at=? where upload_id=?",
            (status, received, imported, rejected, json.dumps(errors), _now(), upload_id))


def _error(status: int, error: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def create_app(state: UploadState) -> FastAPI:
    app = FastAPI(title="Safety Shield dataFileUpload sandbox", docs_url=None, redoc_url=None)
    app.state.upload = state

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if not request.url.path.startswith("/api/"):
            return await call_next(request)
        if request.headers.get("authorization", "") != f"Bearer {state.api_key}":
            return _error(401, "unauthorized", "missing or invalid API key")
        _, rng = state.dice.roll(state.faults.seed)
        if rng.random() < state.faults.throttle_rate:
            return _error(rng.choice([429, 503]), "throttled", "try again later",
                          {"Retry-After": str(state.faults.retry_after)})
        if rng.random() < state.faults.error_rate:
            return _error(500, "internal", "sandbox fault")
        return await call_next(request)

    @app.post("/api/v1/dataFileUpload")
    async def upload(request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= 128:
            return _error(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 128 characters")
        form = await request.form()
        for name in ("districtId", "fileType", "sourceSystem", "file"):
            if not form.get(name):
                return _error(400, "missing_field", f"form field {name} is required")
        if form["fileType"] != "attendance":
            return _error(400, "unknown_file_type", f"fileType {form['fileType']!r} is not supported")
        part = form["file"]
        if isinstance(part, str) or part.content_type not in CSV_TYPES:
            return _error(400, "not_csv", "file must be a text/csv part")
        content = await part.read()
        rows = max(0, content.count(b"\n") - 1 + (not content.endswith(b"\n")))
        if len(content) > state.faults.max_bytes or rows > state.faults.max_rows:
            return JSONResponse({"error": "file_too_large", "maxBytes": state.faults.max_bytes,
                                 "maxRows": state.faults.max_rows}, status_code=413)
        digest = hashlib.sha256(content).hexdigest()
        if key:
            found = state.store.execute("select upload_id, sha256, status from uploads where idempotency_key=?",
                                        (key,))
            if found and found[0][1] == digest:
                return JSONResponse({"uploadId": found[0][0], "status": found[0][2]}, status_code=200)
            if found:
                return _error(409, "idempotency_conflict", "this Idempotency-Key was used for another file")
        upload_id = "upl_" + secrets.token_hex(8)
        state.store.execute(
            "insert into uploads (upload_id, district_id, file_type, source_system, idempotency_key, sha256,"
            " status, received_at) values (?,?,?,?,?,?,'queued',?)",
            (upload_id, form["districtId"], "attendance", form["sourceSystem"], key, digest, _now()))
        state.files[upload_id] = content
        state.queue(form["districtId"], upload_id)
        return JSONResponse({"uploadId": upload_id, "status": "queued"}, status_code=202)

    @app.get("/api/v1/dataFileUpload/{upload_id}")
    def status(upload_id: str) -> JSONResponse:
        body = state.store.upload(upload_id)
        if body is None:
            return _error(404, "not_found", "no such upload")
        return JSONResponse(body)

    @app.get("/admin/rows")
    def rows(districtId: str) -> dict:  # noqa: N803 - the API's own spelling
        return {"rows": imported_rows(state.store.path, districtId)}

    @app.get("/admin/uploads")
    def uploads() -> dict:
        return {"uploads": [state.store.upload(u) for (u,) in
                            state.store.execute("select upload_id from uploads order by received_at")]}

    @app.get("/admin/faults")
    def get_faults() -> dict:
        return state.faults.model_dump()

    @app.put("/admin/faults")
    def put_faults(faults: UploadFaults) -> dict:
        state.faults = faults
        return faults.model_dump()

    return app
