"""SafetyShieldUploadOperator: one district's attendance CSV into Safety Shield, split, idempotent, checked."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.configuration import conf
from airflow.sdk import Asset, AssetAlias, BaseOperator, Context, ObjectStoragePath

from clever_attendance.errors import (
    SafetyShieldFileTooLargeError,
    SafetyShieldRefusedError,
    SafetyShieldRowsRejectedError,
    SafetyShieldUnavailableError,
)
from clever_attendance.hooks.safety_shield import FINAL, SafetyShieldHook, import_summary
from clever_attendance.settings import ASSET_URI, SAFETY_SHIELD_CONN_ID
from clever_attendance.triggers.safety_shield import SafetyShieldImportTrigger

DEFER_MARGIN = 300  # seconds past import_timeout before Airflow gives up on a trigger that never answered


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
    """Upload a district's Clever attendance CSV to Safety Shield's dataFileUpload API and check its import.

    The file is split under the API's byte and row limits (a 413 stating lower limits splits the parts not
    yet accepted under them, and the delivery goes on); each part carries an Idempotency-Key made of the
    district, the window and the part's content, so a re-run imports nothing twice. With `deferrable` an
    import not done at the first poll is waited for in the triggerer, not in a worker slot. A file without
    rows is not posted: the district had no attendance to send. Raises, after the upload, when Safety Shield
    fails a file or rejects more rows than `max_reject_share`. On success, when rows were delivered, adds an
    event of the district's asset to `asset_alias` with what changed.
    """

    template_fields: Sequence[str] = ("csv_path", "district_slug", "safety_shield_district_id", "window",
                                      "max_reject_share", "safety_shield_conn_id", "dry_run", "counts")
    ui_color = "#f2d7b6"

    def __init__(self, *, csv_path: str, district_slug: str, safety_shield_district_id: str, window: str,
                 max_reject_share: float = 0.01, safety_shield_conn_id: str = SAFETY_SHIELD_CONN_ID,
                 import_timeout: float = 1800.0, dry_run: bool | str = False, counts: dict | None = None,
                 asset_alias: str | None = None,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.csv_path = csv_path
        self.district_slug = district_slug
        self.safety_shield_district_id = safety_shield_district_id
        self.window = window
        self.max_reject_share = max_reject_share
        self.safety_shield_conn_id = safety_shield_conn_id
        self.import_timeout = import_timeout
        self.dry_run = dry_run
        self.counts = counts
        self.asset_alias = asset_alias
        self.deferrable = deferrable

    @property
    def _district(self) -> str:
        return f"{self.district_slug} (Safety Shield {self.safety_shield_district_id})"

    def execute(self, context: Context) -> dict:
        started = time.time()
        content = ObjectStoragePath(self.csv_path).read_bytes()
        rows = max(0, content.count(b"\n") - 1)
        if str(self.dry_run).lower() in ("true", "1"):
            self.log.info("Clever district %s: dry run, %d rows not uploaded; the file stays at %s",
                          self._district, rows, self.csv_path)
            return {"dry_run": True, "csv_path": self.csv_path, "rows": rows}
        if not rows:
            self.log.info("Clever district %s, window %s: no attendance to send; nothing posted",
                          self._district, self.window)
            return self._finish(context, [], started)
        hook = SafetyShieldHook(self._district, self.safety_shield_conn_id)
        upload_ids = self._post(hook, content)
        if self.deferrable:
            # one poll here first: a quick import then needs no triggerer hand-off and no second task process
            time.sleep(hook.poll_seconds)
            first = [hook.get_import(u) for u in upload_ids]
            if all(result["status"] in FINAL for result in first):
                return self._finish(context, [import_summary(result) for result in first], started)
            self.defer(trigger=SafetyShieldImportTrigger(upload_ids, self._district, self.safety_shield_conn_id,
                                                         deadline=time.time() + self.import_timeout,
                                                         started=started),
                       method_name="execute_complete", timeout=timedelta(seconds=self.import_timeout + DEFER_MARGIN))
        results = [import_summary(hook.wait_for_import(u, self.import_timeout)) for u in upload_ids]
        return self._finish(context, results, started)

    def execute_complete(self, context: Context, event: dict) -> dict:
        """Back from the triggerer: the imports ended (or did not in time); check them."""
        if event["status"] == "timeout":
            raise SafetyShieldUnavailableError(self._district, "waiting for the import",
                                               f"uploads {', '.join(event['pending'])} not finished after "
                                               f"{self.import_timeout:.0f}s")
        if event["status"] == "error":  # raised again by class, so that the retry policy decides
            kind = SafetyShieldRefusedError if event["error"] == "SafetyShieldRefusedError" \
                else SafetyShieldUnavailableError
            raise kind(self._district, event["step"], event["detail"])
        return self._finish(context, event["results"], event["started"])

    def _post(self, hook: SafetyShieldHook, content: bytes) -> list[str]:
        """Post the file in parts under the limits; a 413 that states lower ones re-splits what is not yet in."""
        hook.get_conn()
        limits = (hook.max_bytes, hook.max_rows)
        parts = self._split(content, limits)
        header = content.partition(b"\n")[0] + b"\n"
        upload_ids: list[str] = []
        while parts:
            part = parts[0]
            key = f"clever-{self.safety_shield_district_id}-{self.window}-{hashlib.sha256(part).hexdigest()}"[:128]
            try:
                upload_id = hook.upload(self.safety_shield_district_id, part, key)
            except SafetyShieldFileTooLargeError as refused:
                lower = (min(limits[0], refused.max_bytes), min(limits[1], refused.max_rows))
                if lower == limits:  # the part is already under what the answer states: splitting cannot help
                    raise
                limits = lower
                self.log.warning("Clever district %s: Safety Shield's limits are now %d bytes and %d rows (the "
                                 "connection says %d and %d); the %d part(s) not yet accepted are split under them",
                                 self._district, *limits, hook.max_bytes, hook.max_rows, len(parts))
                parts = self._split(header + b"".join(p[len(header):] for p in parts), limits)
                continue
            parts.pop(0)
            upload_ids.append(upload_id)
            self.log.info("Clever district %s, window %s: part %d, %d rows, %d bytes: upload %s", self._district,
                          self.window, len(upload_ids), part.count(b"\n") - 1, len(part), upload_id)
        return upload_ids

    def _split(self, content: bytes, limits: tuple[int, int]) -> list[bytes]:
        try:
            return split_csv(content, *limits)
        except ValueError as too_large:
            raise SafetyShieldRefusedError(self._district, "splitting the file", str(too_large)) from None

    def _finish(self, context: Context, results: list[dict], started: float) -> dict:
        summary = self._check(results)
        summary["seconds"] = round(time.time() - started, 2)
        if self.asset_alias and summary["rows"]:
            context["outlet_events"][AssetAlias(self.asset_alias)].add(
                district_asset(self.district_slug), extra={
                    "district": self.district_slug, "window": self.window, "rows_delivered": summary["imported"],
                    "rejected": (self.counts or {}).get("rejected"),
                    "rejected_by_safety_shield": summary["rejected"],
                    "import_ids": [u["uploadId"] for u in summary["uploads"]]})
        return summary

    def _check(self, results: list[dict]) -> dict:
        """The import results in brief; raises when a part failed or too many rows were rejected."""
        failed = [r for r in results if r["status"] == "failed"]
        if failed:
            why = "; ".join(r.get("file_error", "") for r in failed)
            raise SafetyShieldRefusedError(self._district, "import",
                                           f"{len(failed)} of {len(results)} files failed: {why}")
        received = sum(r["rowsReceived"] for r in results)
        rejected = sum(r["rowsRejected"] for r in results)
        summary = {
            "dry_run": False, "rows": received, "imported": sum(r["rowsImported"] for r in results),
            "rejected": rejected, "completedAt": max((r["completedAt"] for r in results), default=None),
            "uploads": [{k: r[k] for k in ("uploadId", "status", "rowsReceived", "rowsImported", "rowsRejected",
                                           "completedAt")} for r in results],
        }
        if results:
            self.log.info("Clever district %s: Safety Shield imported %d of %d rows, rejected %d",
                          self._district, summary["imported"], received, rejected)
        if received and rejected / received > self.max_reject_share:
            columns: Counter = sum((Counter(r["error_columns"]) for r in results), Counter())
            raise SafetyShieldRowsRejectedError(
                self._district, "import", f"{rejected} of {received} rows rejected ({rejected / received:.1%}, "
                f"more than {self.max_reject_share:.1%}); columns at fault: {dict(columns)}")
        return summary


def district_asset(slug: str) -> Asset:
    """The asset of one district's Clever attendance in Safety Shield: an event each time rows were delivered."""
    return Asset(name=f"clever_attendance_{slug}", uri=f"{ASSET_URI}/{slug}")
