"""Prefect flows: the photoforge DAG and the CLI that runs it."""
