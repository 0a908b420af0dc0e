"""The Attendance board: a page in Airflow's navigation and a tab on every run, served by the API server.

Every Airflow process imports the plugins folder (each task's too, for macros), so this module imports
nothing heavy: the FastAPI app (`board.app`) is built on the board's first request.
"""

from __future__ import annotations

import importlib

from clever_attendance.settings import BOARD_PREFIX

# the UI's routes of the page and the tab: /plugin/<route> and /dags/<id>/runs/<id>/plugin/<route>
NAV_ROUTE, RUN_ROUTE = "clever-attendance", "attendance"


class LazyApp:
    """An ASGI app that builds `clever_attendance.board.app.create_app()` when the first request comes."""

    def __init__(self) -> None:
        self._app = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            self._app = importlib.import_module("clever_attendance.board.app").create_app()
        await self._app(scope, receive, send)


FASTAPI_APP = {"app": LazyApp(), "url_prefix": BOARD_PREFIX, "name": "Attendance board"}
# hrefs relative to the UI's <base>, so that an API server under a sub-path serves them too; the run's ids go
# in the path, URL-encoded by the UI
EXTERNAL_VIEWS = [
    {"name": "Clever attendance", "href": f"{BOARD_PREFIX.lstrip('/')}/", "destination": "nav",
     "url_route": NAV_ROUTE, "category": "browse"},
    {"name": "Attendance", "href": f"{BOARD_PREFIX.lstrip('/')}/dags/{{DAG_ID}}/runs/{{RUN_ID}}",
     "destination": "dag_run", "url_route": RUN_ROUTE},
]
