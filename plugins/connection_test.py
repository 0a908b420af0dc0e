"""The Connections form's Test button for connections without a port (clever_attendance.connection_test)."""

from airflow.plugins_manager import AirflowPlugin

from clever_attendance.connection_test import PortlessConnectionTest


class ConnectionTestPlugin(AirflowPlugin):
    name = "attendance_connection_test"
    fastapi_root_middlewares = [{"middleware": PortlessConnectionTest, "name": "Test button: connections without port"}]
