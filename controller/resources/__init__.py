"""The resource kinds (pydantic models), their YAML files, and status write-back.

Must not know: Docker, the repository format, SQL, the clock. Models validate shape and
cross-field rules only; `loader`, `writeback` and `store` hold the file I/O.
"""
