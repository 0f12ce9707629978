"""The REST API and metrics (FastAPI). An edge: it acts through resources, catalog and queue."""
