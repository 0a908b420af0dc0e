# The image of every Airflow service in docker-compose.yaml: Airflow 3.3.2 with the project's
# pinned requirements. The project's dags/, plugins/, include/ and sandbox/ are mounted, not copied.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/airflow/project/
RUN pip install --no-cache-dir -r /opt/airflow/project/requirements.txt -c /opt/airflow/project/constraints.txt
