"""Docker apps: discover, quiesce, dump and restore. Must not know the repository format."""
