# The image of every Airflow service in docker-compose.yaml (target `airflow`): Airflow 3.3.2 with the project's pinned
# requirements and the provider (the distribution clever-attendance: clever_attendance/), installed editable from
# /opt/airflow/project (as `make install` does), so that docker-compose's mount of clever_attendance/ over the same
# path makes code changes live. It holds no sandbox: the stand-ins are never deployed.
FROM apache/airflow:3.3.2-python3.11 AS airflow
COPY requirements.txt constraints.txt pyproject.toml /opt/airflow/project/
COPY clever_attendance /opt/airflow/project/clever_attendance
RUN pip install --no-cache-dir -r /opt/airflow/project/requirements.txt -c /opt/airflow/project/constraints.txt \
    && pip install --no-cache-dir --no-deps -e /opt/airflow/project

# The compose service `sandbox` (target `sandbox`): the same image plus the distribution clever-attendance-sandbox
# (sandbox/), editable from /opt/airflow/project/sandbox, which compose mounts its package over.
FROM airflow AS sandbox
COPY sandbox/pyproject.toml /opt/airflow/project/sandbox/pyproject.toml
COPY sandbox/clever_attendance_sandbox /opt/airflow/project/sandbox/clever_attendance_sandbox
RUN pip install --no-cache-dir --no-deps -e /opt/airflow/project/sandbox
