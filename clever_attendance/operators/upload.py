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

from clever_attendance.contracts import Delivery, Import, RunOptions, UploadOrder
from clever_attendance.errors import (
    SafetyShieldFileTooLargeError,
    SafetyShieldRefusedError,
    SafetyShieldRowsRejectedError,
    SafetyShieldUnavailableError,
)
from clever_attendance.hooks.safety_shield import FINAL, SafetyShieldHook, import_summary
from clever_attendance.settings import ASSET_URI
from clever_attendance.triggers.safety_shield import ImportsEnded, Outcome, SafetyShieldImportTrigger

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

    `order` says which file, for which district and window, and how many rejected rows are too many. The file is
    split under the API's byte and row limits (a 413 stating lower limits splits the parts not yet accepted under
    them, and the delivery goes on); each part carries an Idempotency-Key made of the district, the window and the
    part's content, so a re-run imports nothing twice. With `deferrable` an import not done at the first poll is
    waited for in the triggerer, not in a worker slot. A file without rows is not posted: the district had no
    attendance to send; a dry run (the run's option) posts nothing. Raises, after the upload, when Safety Shield
    fails a file or rejects more rows than the order's `max_reject_share`. On success, when rows were delivered,
    adds an event of the district's asset to `asset_alias` with what changed. Returns the `Delivery`.
    """

    template_fields: Sequence[str] = ("order", "district_slug")
    ui_color = "#f2d7b6"

    def __init__(self, *, order: UploadOrder | dict, district_slug: str | None = None, import_timeout: float = 1800.0,
                 asset_alias: str | None = None,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.order = order  # an XCom's (its `to_xcom`) from the task that made the file
        self.district_slug = district_slug  # the grid's label of a district's instance, and its callbacks'
        self.import_timeout = import_timeout
        self.asset_alias = asset_alias
        self.deferrable = deferrable

    @property
    def _order(self) -> UploadOrder:
        return self.order if isinstance(self.order, UploadOrder) else UploadOrder.from_xcom(self.order)

    @property
    def _district(self) -> str:
        return f"{self._order.district} (Safety Shield {self._order.safety_shield_district_id})"

    def execute(self, context: Context) -> dict:
        started, order = time.time(), self._order
        content = ObjectStoragePath(order.csv_path).read_bytes()
        rows = max(0, content.count(b"\n") - 1)
        if RunOptions.of(context).dry_run:
            self.log.info("Clever district %s: dry run, %d rows not uploaded; the file stays at %s",
                          self._district, rows, order.csv_path)
            return Delivery(rows, dry_run=True).to_xcom()
        if not rows:
            self.log.info("Clever district %s, window %s: no attendance to send; nothing posted",
                          self._district, order.window)
            return self._finish(context, [], started)
        hook = SafetyShieldHook(self._district, order.safety_shield_conn_id)
        upload_ids = self._post(hook, content)
        if self.deferrable:
            # one poll here first: a quick import then needs no triggerer hand-off and no second task process
            time.sleep(hook.poll_seconds)
            first = [hook.get_import(u) for u in upload_ids]
            if all(result["status"] in FINAL for result in first):
                return self._finish(context, [import_summary(result) for result in first], started)
            self.defer(trigger=SafetyShieldImportTrigger(upload_ids, self._district, order.safety_shield_conn_id,
                                                         deadline=time.time() + self.import_timeout,
                                                         started=started),
                       method_name="execute_complete", timeout=timedelta(seconds=self.import_timeout + DEFER_MARGIN))
        results = [import_summary(hook.wait_for_import(u, self.import_timeout)) for u in upload_ids]
        return self._finish(context, results, started)

    def execute_complete(self, context: Context, event: dict) -> dict:
        """Back from the triggerer: the imports ended (or did not in time); check them."""
        ended = ImportsEnded.from_event(event)
        if ended.outcome is Outcome.TIMEOUT:
            raise SafetyShieldUnavailableError(self._district, "waiting for the import",
                                               f"uploads {', '.join(ended.pending)} not finished after "
                                               f"{self.import_timeout:.0f}s")
        failure = ended.error(self._district)
        if failure:
            raise failure
        return self._finish(context, list(ended.results), ended.started)

    def _post(self, hook: SafetyShieldHook, content: bytes) -> list[str]:
        """Post the file in parts under the limits; a 413 that states lower ones re-splits what is not yet in."""
        hook.get_conn()
        order = self._order
        limits = (hook.max_bytes, hook.max_rows)
        parts = self._split(content, limits)
        header = content.partition(b"\n")[0] + b"\n"
        upload_ids: list[str] = []
        while parts:
            part = parts[0]
            key = f"clever-{order.safety_shield_district_id}-{order.window}-{hashlib.sha256(part).hexdigest()}"[:128]
            try:
                upload_id = hook.upload(order.safety_shield_district_id, part, key)
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
                          order.window, len(upload_ids), part.count(b"\n") - 1, len(part), upload_id)
        return upload_ids

    def _split(self, content: bytes, limits: tuple[int, int]) -> list[bytes]:
        try:
            return split_csv(content, *limits)
        except ValueError as too_large:
            raise SafetyShieldRefusedError(self._district, "splitting the file", str(too_large)) from None

    def _finish(self, context: Context, results: list[Import], started: float) -> dict:
        order, delivery = self._order, self._check(results, round(time.time() - started, 2))
        if self.asset_alias and delivery.rows:
            context["outlet_events"][AssetAlias(self.asset_alias)].add(
                district_asset(order.district), extra={
                    "district": order.district, "window": str(order.window), "rows_delivered": delivery.imported,
                    "rejected": order.rejected, "rejected_by_safety_shield": delivery.rejected,
                    "import_ids": [u.upload_id for u in delivery.uploads]})
        return delivery.to_xcom()

    def _check(self, results: list[Import], seconds: float) -> Delivery:
        """The import results in brief; raises when a part failed or too many rows were rejected."""
        failed = [r for r in results if r.status == "failed"]
        if failed:
            why = "; ".join(r.file_error or "" for r in failed)
            raise SafetyShieldRefusedError(self._district, "import",
                                           f"{len(failed)} of {len(results)} files failed: {why}")
        received = sum(r.rows_received for r in results)
        rejected = sum(r.rows_rejected for r in results)
        delivery = Delivery(received, imported=sum(r.rows_imported for r in results), rejected=rejected,
                            completed_at=max((r.completed_at for r in results), default=None),
                            uploads=tuple(results), seconds=seconds)
        if results:
            self.log.info("Clever district %s: Safety Shield imported %d of %d rows, rejected %d",
                          self._district, delivery.imported, received, rejected)
        share = self._order.max_reject_share
        if received and rejected / received > share:
            columns: Counter = sum((Counter(r.error_columns) for r in results), Counter())
            raise SafetyShieldRowsRejectedError(
                self._district, "import", f"{rejected} of {received} rows rejected ({rejected / received:.1%}, "
                f"more than {share:.1%}); columns at fault: {dict(columns)}")
        return delivery


def district_asset(slug: str) -> Asset:
    """The asset of one district's Clever attendance in Safety Shield: an event each time rows were delivered."""
    return Asset(name=f"clever_attendance_{slug}", uri=f"{ASSET_URI}/{slug}")
