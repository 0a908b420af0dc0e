"""The pipeline: the districts file, the steps (extract, transform, upload), the DAG factory, the report."""
