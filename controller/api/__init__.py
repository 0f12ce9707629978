"""The REST API (DESIGN.md §7): the REST contract app platforms were promised, behind API keys.

It acts through the same resources, catalog and work queue as the loop: a backup request
goes on the reconciler's queue, a restore request writes a Restore resource, a schedule
PUT writes a BackupPolicy. Must not know: SQL, the repository's format, Docker.
"""
