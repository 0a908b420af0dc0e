"""The Attendance board's FastAPI app: its pages and the rejects download, each behind Airflow's own login.

Airflow does not guard a plugin's app: every route here asks for a logged-in user (401 without one) who may
read the attendance DAGs (403 otherwise), through the API server's own auth manager.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from clever_attendance.board import fleet, pages
from clever_attendance.hooks.ledger import LedgerHook
from clever_attendance.ledger import read
from clever_attendance.pipeline import config
from clever_attendance.settings import BOARD_PREFIX, DAILY, EVENTS, LEDGER_CONN_ID, POLL, REVIEW

DELIVERING = (POLL, DAILY, EVENTS)  # the DAGs whose attendance the board shows
DAG_IDS = (*DELIVERING, REVIEW)
DRILL_DAYS = 45  # a district's page: its dates of the last this many days


def reader(user: GetUserDep):
    """A logged-in user who may read every DAG that delivers attendance (the review DAG alone is not enough: it
    shows one hold, the board every district's deliveries and rejects)."""
    manager = get_auth_manager()
    if not all(manager.is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user)
               for dag_id in DELIVERING):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: the board needs read access to the DAGs "
                                                       f"{', '.join(DELIVERING)}")
    return user


def links(request: Request) -> pages.Links:
    """The board's own pages and Airflow's, under whatever path the API server is served."""
    board = request.scope.get("root_path", BOARD_PREFIX).rstrip("/")
    return pages.Links(board=board, airflow=board[: -len(BOARD_PREFIX)] if board.endswith(BOARD_PREFIX) else "")


def create_app() -> FastAPI:
    app = FastAPI(title="Clever attendance board", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(config.ConfigError)
    def unreadable_file(_: Request, error: config.ConfigError) -> HTMLResponse:
        return HTMLResponse(pages.problem("the districts file cannot be read", str(error),
                                          "Fix the field named; the board and the DAGs read the file again as it "
                                          "changes."), status.HTTP_503_SERVICE_UNAVAILABLE)

    @app.exception_handler(sa.exc.SQLAlchemyError)
    def no_ledger(_: Request, error: sa.exc.SQLAlchemyError) -> HTMLResponse:
        return HTMLResponse(pages.problem("the attendance ledger did not answer", type(error).__name__,
                                          f"Check the database of the connection {LEDGER_CONN_ID} and that it "
                                          "answers from the API server."), status.HTTP_503_SERVICE_UNAVAILABLE)

    @app.exception_handler(fleet.QueryError)
    def bad_query(request: Request, error: fleet.QueryError) -> HTMLResponse:
        return HTMLResponse(pages.problem("the board cannot read this address", str(error),
                                          "Search by a district's name or slug.", links(request).board + "/"),
                            status.HTTP_400_BAD_REQUEST)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(reader)])
    def board(request: Request) -> str:
        query = fleet.parse(request.query_params.getlist)
        now, known = datetime.now(UTC), config.load()
        today = now.astimezone(pages.zone(known.timezone)).date()
        with LedgerHook().get_conn().connect() as db:
            dates = read.school_days(db, today)
            standing = read.standings(db, dates[0] if dates else str(today - timedelta(days=read.LOOK_BACK)))
            before = [day for day in dates if day < str(today)]
            shown = fleet.view(known, standing, read.held(db), now, before[-1] if before else None, query)
            districts = [entry.district for entry in shown.shown if entry.district]
            lines, cells = read.overview(db, districts, now, dates, standing)
            waiting = read.waiting(db, [d.slug for d in districts])
        return pages.board(links(request), known, now, shown, lines, dates, cells, waiting)

    @app.get("/districts/{slug}", response_class=HTMLResponse, dependencies=[Depends(reader)])
    def district(request: Request, slug: str) -> str:
        found = _district(slug)
        with LedgerHook().get_conn().connect() as db:
            rows = read.district_dates(db, slug, date.today() - timedelta(days=DRILL_DAYS))
        return pages.district(links(request), found, rows, datetime.now(UTC))

    @app.get("/districts/{slug}/rejects/{day}.csv", dependencies=[Depends(reader)])
    def rejects(slug: str, day: date) -> Response:
        _district(slug)
        with LedgerHook().get_conn().connect() as db:
            text = read.rejects_csv(db, slug, str(day))
        if text is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"the ledger holds no rejects of {slug} on {day}: none "
                                                           "were delivered, or they are past rejects_retention_days")
        return Response(text, media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="rejects_{slug}_{day}.csv"'})

    @app.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse,
             dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))])
    def run(request: Request, dag_id: str, run_id: str) -> str:
        if dag_id not in DAG_IDS:  # Airflow 3.3 shows a plugin's tab on every DAG's runs
            return pages.not_ours(dag_id)
        with LedgerHook().get_conn().connect() as db:
            rows, holds = read.run_outcome(db, dag_id, run_id), read.run_holds(db, dag_id, run_id)
        return pages.run(links(request), config.load(), dag_id, run_id, rows, holds)

    return app


def _district(slug: str) -> config.District:
    known = config.load()  # outside the try: a file that cannot be read is said as such, not as a missing district
    try:
        return known.district(slug)
    except config.ConfigError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no district {slug[:64]!r} in the districts file") from None
