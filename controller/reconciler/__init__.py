"""The reconcile loop: the only package that combines engines (apps, repository, catalog)."""
