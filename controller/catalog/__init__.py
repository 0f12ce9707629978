"""The catalog: SQL tables of observed state (backups, items, restore runs, events).

Must not know: the repository format, Docker, YAML. Ids are plain strings; times come in
from callers.
"""
