# The image of every Airflow service in docker-compose.yaml: Airflow 3.3.2 with the project's pinned
# requirements and the project itself, installed editable from /opt/airflow/project (as `make install` does),
# so that docker-compose's mount of clever_attendance/ over the same path makes code changes live.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt pyproject.toml /opt/airflow/project/
COPY clever_attendance /opt/airflow/project/clever_attendance
RUN pip install --no-cache-dir -r /opt/airflow/project/requirements.txt -c /opt/airflow/project/constraints.txt \
    && pip install --no-cache-dir --no-deps -e /opt/airflow/project
