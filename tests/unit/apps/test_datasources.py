"""Database engines: detection, credentials, commands (no password in argv), completion
marks, the PostgreSQL restore filter, and the MongoDB password wrapper run by a real sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controller.apps.datasources import Credentials, datasource_for, engine_for_image
from controller.apps.datasources.inventory import parse_counts
from controller.apps.datasources.mongodb import MongoDB
from controller.apps.datasources.postgresql import PostgreSQL

SECRET = "s3cr'et\"pw"


@pytest.mark.parametrize(
    ("image", "engine"),
    [
        ("mariadb:11", "mariadb"),
        ("docker.io/library/mysql:8.4", "mysql"),
        ("postgres:16-alpine", "postgresql"),
        ("ghcr.io/x/postgis@sha256:abcd", "postgresql"),
        ("registry:5000/team/mongo:7", "mongodb"),
        ("percona/percona-server:8", "mysql"),
        ("nginx:1.27", None),
        ("wordpress:php8", None),
    ],
)
def test_engine_from_image_name(image: str, engine: str | None) -> None:
    assert engine_for_image(image) == engine


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown database engine 'oracle'; expected one of postgresql, mysql"):
        datasource_for("oracle")


@pytest.mark.parametrize(
    ("engine", "environment", "expected"),
    [
        ("postgresql", {"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "pw"}, Credentials("shop", "pw")),
        ("postgresql", {}, Credentials("postgres", None)),
        ("mariadb", {"MARIADB_ROOT_PASSWORD": "r"}, Credentials("root", "r")),
        ("mysql", {"MYSQL_ROOT_PASSWORD": "r", "MYSQL_USER": "u", "MYSQL_PASSWORD": "p"}, Credentials("root", "r")),
        ("mysql", {"MYSQL_USER": "u", "MYSQL_PASSWORD": "p"}, Credentials("u", "p")),
        ("mysql", {"MYSQL_DATABASE": "x"}, None),
        ("mongodb", {"MONGO_INITDB_ROOT_USERNAME": "m", "MONGO_INITDB_ROOT_PASSWORD": "p"}, Credentials("m", "p")),
        # Docker secrets: the *_FILE forms name a file inside the container, read only there.
        ("postgresql", {"POSTGRES_PASSWORD_FILE": "/run/secrets/pg"}, Credentials("postgres", None, "/run/secrets/pg")),
        ("mariadb", {"MARIADB_ROOT_PASSWORD_FILE": "/run/secrets/r"}, Credentials("root", None, "/run/secrets/r")),
        ("mysql", {"MYSQL_ROOT_PASSWORD_FILE": "/s/r", "MYSQL_USER": "u"}, Credentials("root", None, "/s/r")),
        ("mariadb", {"MARIADB_USER": "wp", "MARIADB_PASSWORD_FILE": "/s/wp"}, Credentials("wp", None, "/s/wp")),
        ("mysql", {"MYSQL_USER": "wp", "MYSQL_PASSWORD_FILE": "/s/wp"}, Credentials("wp", None, "/s/wp")),
        (
            "mongodb",
            {"MONGO_INITDB_ROOT_USERNAME": "m", "MONGO_INITDB_ROOT_PASSWORD_FILE": "/s/m"},
            Credentials("m", None, "/s/m"),
        ),
    ],
)
def test_credentials_from_the_standard_variables(
    engine: str, environment: dict[str, str], expected: Credentials | None
) -> None:
    assert datasource_for(engine).credentials_from(environment) == expected


@pytest.mark.parametrize("engine", ["postgresql", "mysql", "mariadb", "mongodb"])
def test_passwords_travel_in_the_environment_never_in_argv(engine: str) -> None:
    source = datasource_for(engine)
    credentials = Credentials("admin", SECRET)
    commands = [
        source.dump_command(credentials, []),
        source.dump_command(credentials, ["one"]),
        source.restore_command(credentials),
    ]
    for command in commands:
        assert not any(SECRET in argument for argument in command.argv), command.argv
        assert SECRET in command.environment.values()
        assert SECRET not in repr(command) and SECRET not in command.shown()


@pytest.mark.parametrize(("engine", "variable"), [("postgresql", "PGPASSWORD"), ("mariadb", "MYSQL_PWD")])
def test_a_password_file_is_read_inside_the_container_into_the_tools_variable(
    tmp_path: Path, engine: str, variable: str
) -> None:
    """The wrapper runs in the container (here: a real sh); the password never leaves it."""
    secret = tmp_path / "db-password"
    secret.write_text(SECRET)
    fake_tool = tmp_path / "tool"
    fake_tool.write_text(f'#!/bin/sh\necho "argv: $*"\necho "password: ${variable}"\n')
    fake_tool.chmod(0o755)
    for command in (
        datasource_for(engine).dump_command(Credentials("admin", None, str(secret)), []),
        datasource_for(engine).restore_command(Credentials("admin", None, str(secret))),
    ):
        assert SECRET not in repr(command) and SECRET not in " ".join(command.argv)
        assert SECRET not in command.environment.values() and "sh -c" not in command.shown()
        argv = [*command.argv[:4], str(fake_tool), *command.argv[5:]]  # the wrapper, then our tool
        done = subprocess.run(
            argv, env={"PATH": "/usr/bin:/bin", **command.environment}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert f"password: {SECRET}" in done.stdout.splitlines()
    missing = datasource_for(engine).dump_command(Credentials("admin", None, str(tmp_path / "absent")), [])
    argv = [*missing.argv[:4], str(fake_tool), *missing.argv[5:]]
    done = subprocess.run(argv, env={"PATH": "/usr/bin:/bin", **missing.environment}, capture_output=True, text=True)
    assert done.returncode == 1 and "absent" in done.stderr and "password:" not in done.stdout


def test_dump_completion_marks() -> None:
    postgres, mysql, mongo = datasource_for("postgresql"), datasource_for("mysql"), datasource_for("mongodb")
    assert postgres.dump_is_complete(b"...\n--\n-- PostgreSQL database cluster dump complete\n--\n\n")
    assert postgres.dump_is_complete(b"...\n--\n-- PostgreSQL database dump complete\n--\n\n")
    assert not postgres.dump_is_complete(b"COPY public.orders (id) FROM stdin;\n1\n2\n")
    assert mysql.dump_is_complete(b"/*!40101 SET x */;\n\n-- Dump completed on 2026-11-24  1:19:46\n")
    assert not mysql.dump_is_complete(b"INSERT INTO `t` VALUES (1),(2")
    assert mongo.dump_is_complete(b"\x00collection data\xff\xff\xff\xff")
    assert not mongo.dump_is_complete(b"\x00collection data")


def test_postgres_restore_input_drops_only_the_connecting_roles_statements() -> None:
    dump = (
        b"SET default_transaction_read_only = off;\n"
        b"DROP ROLE IF EXISTS shop;\nDROP ROLE IF EXISTS reporting;\n"
        b"CREATE ROLE shop;\nALTER ROLE shop WITH SUPERUSER LOGIN;\n"
        b"CREATE ROLE reporting;\nCREATE ROLE shopper;\n-- CREATE ROLE shop; in a comment line stays\n"
    )
    for size in (1, 3, 7, 64, len(dump)):  # any chunking, lines cut anywhere
        chunks = [dump[i : i + size] for i in range(0, len(dump), size)]
        filtered = b"".join(PostgreSQL().restore_input(Credentials("shop"), chunks))
        assert filtered == (
            b"SET default_transaction_read_only = off;\n"
            b"DROP ROLE IF EXISTS reporting;\n"
            b"ALTER ROLE shop WITH SUPERUSER LOGIN;\n"
            b"CREATE ROLE reporting;\nCREATE ROLE shopper;\n-- CREATE ROLE shop; in a comment line stays\n"
        )


def test_mongodb_wrapper_passes_the_password_in_a_private_config_file(tmp_path: Path) -> None:
    fake_tool = tmp_path / "mongodump"
    fake_tool.write_text(
        '#!/bin/sh\necho "argv: $*"\nfor a in "$@"; do case "$a" in --config=*) f="${a#--config=}";; esac; done\n'
        'stat -c "mode: %a" "$f"\ncat "$f"\necho "$f" > ' + str(tmp_path / "config-path") + "\n"
    )
    fake_tool.chmod(0o755)
    command = MongoDB().dump_command(Credentials("admin", SECRET), ["shop"])
    argv = [*command.argv[:4], str(fake_tool), *command.argv[5:]]
    done = subprocess.run(argv, env={"PATH": "/usr/bin:/bin", **command.environment}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "argv: --archive --quiet --db=shop --username=admin --authenticationDatabase=admin --config=" in done.stdout
    assert SECRET not in done.stdout.splitlines()[0]
    assert "mode: 600" in done.stdout
    assert "password: 's3cr''et\"pw'" in done.stdout  # YAML single quotes: the quote is doubled
    assert not Path((tmp_path / "config-path").read_text().strip()).exists()  # removed afterwards


def test_mongodb_dump_takes_one_database_or_all() -> None:
    with pytest.raises(ValueError, match="one database or all"):
        MongoDB().dump_command(Credentials("admin", "pw"), ["a", "b"])


def counted(engine: str, dump: bytes, size: int) -> dict[str, dict[str, int]]:
    """The engine's count of `dump`, fed in pieces of `size` bytes (lines cut anywhere)."""
    inventory = datasource_for(engine).inventory
    assert inventory is not None
    counter = inventory.dump_counter()
    for start in range(0, len(dump), size):
        counter.feed(dump[start : start + size])
    return counter.inventory()


def test_mysql_dumps_are_counted_by_database_table_and_row_however_they_are_cut() -> None:
    dump = (
        b"-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n"
        b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `wordpress`;\nUSE `wordpress`;\n"
        b"CREATE TABLE `wp_posts` (\n  `id` int NOT NULL\n) ENGINE=InnoDB;\n"
        b"INSERT INTO `wp_posts` VALUES (1,'a),(b'),(2,'it\\'s \\\\'),(3,NULL);\n"
        b"INSERT INTO `wp_posts` VALUES (4,'x');\n"
        b"INSERT INTO `wp_posts` VALUES\n(5,'one per line, as mariadb-dump writes'),\n(6,'a\\n),(b'),\n(7,NULL);\n"
        b"CREATE TABLE `empty``one` (\n  `id` int\n);\n"
        b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;\nUSE `shop`;\n"
        b"-- Dump completed on 2026-12-01\n"
    )
    for size in (1, 5, 33, len(dump)):
        assert counted("mariadb", dump, size) == {"wordpress": {"wp_posts": 7, "empty`one": 0}, "shop": {}}


def test_postgres_dumps_are_counted_by_database_table_and_row_however_they_are_cut() -> None:
    dump = (
        b"\\connect template1\n\n"
        b"CREATE DATABASE shop WITH TEMPLATE = template0;\n\\connect shop\n\n"
        b"CREATE TABLE public.orders (\n    id integer NOT NULL\n);\n"
        b'CREATE TABLE public."Audit Log" (\n    id integer\n);\n'
        b"COPY public.orders (id, note) FROM stdin;\n1\tfirst\n2\t\\\\.not the end\n3\t\\N\n\\.\n\n"
        b'COPY public."Audit Log" (id) FROM stdin;\n\\.\n'
        b"\\connect -reuse-previous=on \"dbname='blog'\"\n"
        b"COPY public.posts (id) FROM stdin;\n7\n\\.\n"
    )
    for size in (1, 7, 40, len(dump)):
        assert counted("postgresql", dump, size) == {
            "template1": {},
            "shop": {"public.orders": 3, "public.Audit Log": 0},
            "blog": {"public.posts": 1},
        }


def test_table_counts_read_as_the_count_commands_print_them() -> None:
    assert parse_counts("public.orders\t3\npublic.Audit Log\t0\n") == {"public.orders": 3, "public.Audit Log": 0}
    assert parse_counts("wp_posts\t12\nnoise\n") == {"wp_posts": 12}
