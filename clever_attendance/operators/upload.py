"""SafetyShieldUploadOperator: one district's attendance CSV into Safety Shield, split, idempotent, checked."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context, ObjectStoragePath

from clever_attendance.errors import SafetyShieldRefusedError, SafetyShieldRowsRejectedError
from clever_attendance.hooks.safety_shield import SafetyShieldHook


def split_csv(content: bytes, max_bytes: int, max_rows: int) -> list[bytes]:
    """Parts of a CSV under both limits, each with the header; never splits a record."""
    header, _, body = content.partition(b"\n")
    header += b"\n"
    if b'"' in body:  # a quoted field may hold a line break: cut on whole records
        text = body.decode("utf-8")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        records = []
        for row in csv.reader(io.StringIO(text, newline="")):
            writer.writerow(row)
            records.append(out.getvalue().encode())
            out.seek(0)
            out.truncate()
    else:
        records = [line + b"\n" for line in body.split(b"\n") if line]
    parts, current, size = [], [], len(header)
    for record in records:
        if len(header) + len(record) > max_bytes:
            raise ValueError(f"one row is larger than the {max_bytes}-byte file limit")
        if current and (len(current) >= max_rows or size + len(record) > max_bytes):
            parts.append(header + b"".join(current))
            current, size = [], len(header)
        current.append(record)
        size += len(record)
    parts.append(header + b"".join(current))
    return parts


class SafetyShieldUploadOperator(BaseOperator):
    """Upload a district's Clever attendance CSV to Safety Shield's dataFileUpload API and wait for the import.

    The file is split under the API's byte and row limits; each part carries an Idempotency-Key made of
    the district, the window and the part's content hash, so a re-run imports nothing twice. Raises,
    after the upload, when Safety Shield fails a file or rejects more rows than `max_reject_share`.
    On success, writes `receipt` (plus the import result) as JSON to `receipt_path`, if given.
    """

    template_fields: Sequence[str] = ("csv_path", "district_slug", "safety_shield_district_id", "window",
                                      "receipt_path", "receipt", "dry_run")
    ui_color = "#f2d7b6"

    def __init__(self, *, csv_path: str, district_slug: str, safety_shield_district_id: str, window: str,
                 max_reject_share: float = 0.01, safety_shield_conn_id: str = "safety_shield_default",
                 import_timeout: float = 1800.0, receipt_path: str | None = None,
                 receipt: dict | None = None, dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.csv_path = csv_path
        self.district_slug = district_slug
        self.safety_shield_district_id = safety_shield_district_id
        self.window = window
        self.max_reject_share = max_reject_share
        self.safety_shield_conn_id = safety_shield_conn_id
        self.import_timeout = import_timeout
        self.receipt_path = receipt_path
        self.receipt = receipt
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict:
        started = time.monotonic()
        district = f"{self.district_slug} (Safety Shield {self.safety_shield_district_id})"
        content = ObjectStoragePath(self.csv_path).read_bytes()
        rows = max(0, content.count(b"\n") - 1)
        if str(self.dry_run).lower() in ("true", "1"):
            self.log.info("Clever district %s: dry run, %d rows not uploaded; the file stays at %s",
                          district, rows, self.csv_path)
            return {"dry_run": True, "csv_path": self.csv_path, "rows": rows}
        hook = SafetyShieldHook(district, self.safety_shield_conn_id)
        hook.get_conn()
        parts = split_csv(content, hook.max_bytes, hook.max_rows)
        results = []
        for n, part in enumerate(parts, 1):
            key = (f"clever-{self.safety_shield_district_id}-{self.window}-{n}of{len(parts)}-"
                   f"{hashlib.sha256(part).hexdigest()[:32]}")[:128]
            upload_id = hook.upload(self.safety_shield_district_id, part, key)
            self.log.info("Clever district %s, window %s: part %d/%d, %d rows, %d bytes: upload %s",
                          district, self.window, n, len(parts), part.count(b"\n") - 1, len(part), upload_id)
            results.append(hook.wait_for_import(upload_id, self.import_timeout))
        summary = self._check(district, results)
        summary["seconds"] = round(time.monotonic() - started, 2)
        if self.receipt_path:
            path = ObjectStoragePath(self.receipt_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**(self.receipt or {}), **summary}, indent=2))
        return summary

    def _check(self, district: str, results: list[dict]) -> dict:
        """The import results in brief; raises when a part failed or too many rows were rejected."""
        failed = [r for r in results if r["status"] == "failed"]
        if failed:
            why = "; ".join(e.get("message", "") for r in failed for e in r.get("errors", [])[:1])
            raise SafetyShieldRefusedError(district, "import", f"{len(failed)} of {len(results)} files failed: {why}")
        received = sum(r["rowsReceived"] for r in results)
        rejected = sum(r["rowsRejected"] for r in results)
        summary = {
            "dry_run": False, "rows": received, "imported": sum(r["rowsImported"] for r in results),
            "rejected": rejected, "completedAt": max((r["completedAt"] for r in results), default=None),
            "uploads": [{k: r[k] for k in ("uploadId", "status", "rowsReceived", "rowsImported", "rowsRejected",
                                           "completedAt")} for r in results],
        }
        self.log.info("Clever district %s: Safety Shield imported %d of %d rows, rejected %d",
                      district, summary["imported"], received, rejected)
        if received and rejected / received > self.max_reject_share:
            columns = Counter(e.get("column") or "(row)" for r in results for e in r.get("errors", []))
            raise SafetyShieldRowsRejectedError(
                district, "import", f"{rejected} of {received} rows rejected ({rejected / received:.1%}, "
                f"more than {self.max_reject_share:.1%}); columns at fault: {dict(columns)}")
        return summary
