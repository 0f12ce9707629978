"""The deduplicating, encrypted repository over a Storage. Must not know Docker, YAML or SQL."""
