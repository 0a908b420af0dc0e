"""CleverDistrictSyncOperator: one district's window in one task: Clever → the PowerSchool CSV → Safety Shield."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Context

from clever_attendance.contracts import UploadOrder
from clever_attendance.operators.upload import SafetyShieldUploadOperator


class CleverDistrictSyncOperator(SafetyShieldUploadOperator):
    """Extract the district's window from Clever into the run's staging folder, transform it into the CSV, its
    rejects and the data guard's holds, then upload it as `SafetyShieldUploadOperator` does.

    Each step's result is an XCom of its own (`manifest`, `transformed`, then the delivery) and is kept in the
    staging folder until the instance succeeds: a retry, or a clear after a failure, starts at the step that failed.
    `step` names the step under way, for the failure notice; the task's log has a section per step. One task rather
    than one per step: each task process costs a fork, a parse of the DAG file and a dozen Execution API calls, and
    the scheduler examines every task instance of a run in each of its loops.
    """

    template_fields = (*SafetyShieldUploadOperator.template_fields, "window")

    def __init__(self, *, district_slug: str, window: str, **kwargs: Any) -> None:
        super().__init__(order=None, district_slug=district_slug, **kwargs)
        self.window = window  # str(Window), as the check chose it
        self.step = "extract"

    def execute(self, context: Context) -> dict:
        self.order = self._prepare(context)
        return self._done(context, super().execute(context))  # the upload; raises TaskDeferred to wait in the triggerer

    def execute_complete(self, context: Context, event: dict) -> dict:
        self.order = self._prepare(context)  # what extract and transform kept, read again
        return self._done(context, super().execute_complete(context, event))

    def _prepare(self, context: Context) -> UploadOrder:
        from clever_attendance.pipeline.tasks import prepare

        order = prepare(context, self.district_slug, self.window, self._begin)
        self._begin("upload")
        return order

    def _begin(self, step: str) -> None:
        self.step = step

    def _done(self, context: Context, delivery: dict) -> dict:
        from clever_attendance.pipeline.tasks import steps_done

        steps_done(context, self.district_slug, self.window)
        return delivery
