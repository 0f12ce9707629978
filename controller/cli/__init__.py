"""The `lifeboat` command line: parse, call, render. No business logic lives here."""
