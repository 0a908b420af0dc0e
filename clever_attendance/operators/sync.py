"""CleverDistrictSyncOperator: one district's window in one task: Clever → the PowerSchool CSV → Safety Shield."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import Context

from clever_attendance.operators.upload import SafetyShieldUploadOperator
from clever_attendance.retry_policy import Decision, rule_for


class CleverDistrictSyncOperator(SafetyShieldUploadOperator):
    """Extract the district's window from Clever into the run's staging folder, transform it into the CSV, its
    rejects and the data guard's holds, then upload it as `SafetyShieldUploadOperator` does.

    Each step's result is an XCom of its own (`manifest`, `transformed`, then the delivery) and is kept in the
    staging folder through a transient fault (one the retry policy retries): the retry, or a clear once the
    service answers again, starts at the step that failed. A permanent failure, which a person fixes (a
    connection, the districts file, Clever's roster), or a success drops them: clearing then reads Clever anew.
    `step` names the step under way, for the failure notice; the task's log has a section per step.

    One task rather than one per step: each task process costs a fork, a parse of the DAG file and a dozen
    Execution API calls, and the scheduler examines every task instance of a run in each of its loops.
    """

    template_fields = (*SafetyShieldUploadOperator.template_fields, "window")

    def __init__(self, *, district_slug: str, window: str, **kwargs: Any) -> None:
        super().__init__(order=None, district_slug=district_slug, **kwargs)
        self.window = window  # str(Window), as the check chose it
        self.step = "extract"

    def execute(self, context: Context) -> dict:
        return self._sync(context, SafetyShieldUploadOperator.execute, context)

    def execute_complete(self, context: Context, event: dict) -> dict:
        """Back from the triggerer: the kept results of extract and transform, then the upload's check."""
        return self._sync(context, SafetyShieldUploadOperator.execute_complete, context, event)

    def _sync(self, context: Context, upload: Callable[..., dict], *args: Any) -> dict:
        from clever_attendance.pipeline.tasks import prepare

        try:
            self.order = prepare(context, self.district_slug, self.window, self._step)
            with self._step("upload"):
                delivery = upload(self, *args)  # TaskDeferred, no Exception, waits in the triggerer: all is kept
        except Exception as failure:
            if rule_for(failure).decision is Decision.FAIL:
                self._forget(context)
            raise
        self._forget(context)
        return delivery

    @contextmanager
    def _step(self, step: str) -> Iterator[None]:
        """A step under way: named for the failure notice, and a section of its own in the task's log."""
        self.step = step
        self.log.info("::group::%s", step)
        try:
            yield
        finally:
            self.log.info("::endgroup::")

    def _forget(self, context: Context) -> None:
        from clever_attendance.pipeline.tasks import forget_steps

        forget_steps(context, self.district_slug, self.window)
