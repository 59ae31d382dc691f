"""Prefect flows: ingest (files and folders into the warehouse) and reprocess (re-extract the archive)."""
