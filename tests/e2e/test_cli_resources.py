"""The resource verbs as a person runs them: exit codes, one line per problem, JSON output."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from controller.catalog.catalog import Catalog
from controller.catalog.models import Backup, BackupStatus
from tests.builders import a_policy, a_storage, as_yaml
from tests.e2e.conftest import LIFEBOAT, Lifeboat

ROOT = Path(__file__).parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_validate_examples_exits_zero(lifeboat: Lifeboat) -> None:
    for name in ("quickstart", "resources", "gitops"):  # each folder is one host's resources
        result = lifeboat("validate", "-f", str(ROOT / "examples" / name))
        assert result.code == 0, result.err
        assert "resource(s) valid" in result.out


def test_validate_broken_fixtures_prints_one_line_per_problem(lifeboat: Lifeboat) -> None:
    result = lifeboat("validate", "-f", str(ROOT / "tests" / "fixtures" / "broken"))
    assert result.code == 1
    lines = result.err.strip().splitlines()
    problems, summary = lines[:-1], lines[-1]
    assert summary == "11 problem(s) found"
    assert len(problems) == 11
    for line in problems:
        location = line.split(" ", 1)[0]
        file, _, number = location.rpartition(":")
        assert file.endswith(".yaml") and number.isdigit(), line
    assert any('schedule.yaml:9 BackupPolicy "bad-time" spec.schedule.time: expected HH:MM' in p for p in problems)


def test_apply_get_describe_delete_round_trip(lifeboat: Lifeboat, tmp_path: Path) -> None:
    source = write(tmp_path / "in" / "app.yaml", as_yaml(a_storage()) + "---\n" + as_yaml(a_policy()))
    applied = lifeboat("apply", "-f", str(source))
    assert applied.code == 0, applied.err
    assert applied.out.splitlines() == ["backupstorage/local created", "backuppolicy/wordpress001 created"]

    table = lifeboat("get", "policies")
    assert table.code == 0, table.err
    header, row = table.out.splitlines()
    assert header.split()[:3] == ["NAME", "APP", "STORAGE"]
    assert row.split()[:3] == ["wordpress001", "wordpress001", "local"]

    as_json = json.loads(lifeboat("get", "backuppolicy", "wordpress001", "-o", "json").out)
    assert as_json["spec"]["retention"] == {"keepLast": 7}
    assert len(as_json["metadata"]["generation"]) == 16

    described = lifeboat("describe", "policy", "wordpress001")
    assert described.code == 0, described.err
    assert "Source:" in described.out and "events: none recorded" in described.out

    assert lifeboat("delete", "policy", "wordpress001").out.strip() == "backuppolicy/wordpress001 deleted"
    missing = lifeboat("get", "policy", "wordpress001")
    assert missing.code == 1
    assert missing.err.strip() == f'error: BackupPolicy "wordpress001" not found in {lifeboat.resources}'


def test_apply_with_any_invalid_document_changes_nothing(lifeboat: Lifeboat, tmp_path: Path) -> None:
    bad = a_policy("bad", spec={"schedule": {"frequency": "daily", "time": "25:00"}})
    source = write(tmp_path / "in.yaml", as_yaml(a_storage()) + "---\n" + as_yaml(bad))
    result = lifeboat("apply", "-f", str(source))
    assert result.code == 1
    assert "spec.schedule.time" in result.err and "nothing was changed" in result.err
    assert not lifeboat.resources.exists()


def test_diff_exit_codes_follow_kubectl(lifeboat: Lifeboat, tmp_path: Path) -> None:
    source = write(tmp_path / "p.yaml", as_yaml(a_policy()))
    assert lifeboat("diff", "-f", str(source)).code == 1  # would create
    lifeboat("apply", "-f", str(source))
    same = lifeboat("diff", "-f", str(source))
    assert (same.code, same.out) == (0, "")
    write(source, as_yaml(a_policy(spec={"suspend": True})))
    changed = lifeboat("diff", "-f", str(source))
    assert changed.code == 1 and "+  suspend: true" in changed.out
    write(source, "kind: [")
    assert lifeboat("diff", "-f", str(source)).code == 2


def test_apply_dry_run_and_status_survives_apply(lifeboat: Lifeboat, tmp_path: Path) -> None:
    source = write(tmp_path / "p.yaml", as_yaml(a_policy()))
    dry = lifeboat("apply", "--dry-run", "-f", str(source))
    assert dry.out.strip() == "backuppolicy/wordpress001 created (dry run)"
    assert not lifeboat.resources.exists()
    lifeboat("apply", "-f", str(source))
    live = lifeboat.resources / "policies" / "wordpress001.yaml"
    live.write_text(live.read_text() + "status:\n  lastError: from controller\n")
    write(source, as_yaml(a_policy(spec={"suspend": True})))
    assert lifeboat("apply", "-f", str(source)).out.strip() == "backuppolicy/wordpress001 configured"
    data = yaml.safe_load(live.read_text())
    assert data["spec"]["suspend"] is True and data["status"]["lastError"] == "from controller"


def test_get_backups_from_an_empty_catalog(lifeboat: Lifeboat) -> None:
    result = lifeboat("get", "backups", "-o", "json")
    assert (result.code, json.loads(result.out)) == (0, [])


def test_get_backups_shows_what_retention_does_next(lifeboat: Lifeboat, tmp_path: Path) -> None:
    source = write(tmp_path / "policy.yaml", as_yaml(a_policy(spec={"retention": {"keepLast": 2}})))
    assert lifeboat("apply", "-f", str(source)).code == 0
    catalog = Catalog(lifeboat.env()["LIFEBOAT_CATALOG"])
    now = datetime.now(UTC)
    for age, status in (
        (3, BackupStatus.COMPLETED),
        (2, BackupStatus.COMPLETED),
        (1, BackupStatus.FAILED),
        (0, BackupStatus.COMPLETED),
    ):
        catalog.add_backup(
            Backup(
                backup_id=f"bk-{age}",
                app_id="wordpress001",
                app_name="wordpress001",
                backup_type="incremental",
                status=status,
                created_at=now - timedelta(hours=age),
                policy="wordpress001",
            )
        )
    catalog.close()
    result = lifeboat("get", "backups", "-o", "json")
    assert result.code == 0, result.err
    outlook = {b["backup_id"]: b["retention"] for b in json.loads(result.out)}
    assert outlook == {"bk-0": "keep (newest, last)", "bk-1": None, "bk-2": "keep (last)", "bk-3": "forget next"}
    table = lifeboat("get", "backups").out
    assert "RETENTION" in table.splitlines()[0] and "forget next" in table
    for backup_id, expected in (("bk-3", "forget next"), ("bk-0", "keep (newest, last)")):
        described = yaml.safe_load(lifeboat("describe", "backup", backup_id, "-o", "yaml").out)
        assert described["retention"] == expected
    assert "retention: forget next" in lifeboat("describe", "backup", "bk-3").out


def test_unknown_kind_is_a_usage_error(lifeboat: Lifeboat) -> None:
    result = lifeboat("get", "widgets")
    assert result.code == 2 and "unknown kind 'widgets'" in result.err


def test_bad_config_file_is_one_line(lifeboat: Lifeboat, tmp_path: Path) -> None:
    config = write(tmp_path / "backup.yaml", "limits:\n  max_concurrent_backups: zero\n")
    result = lifeboat("--config", str(config), "get", "policies")
    assert result.code == 1
    assert result.err.count("\n") == 1 and "limits.max_concurrent_backups" in result.err


def test_a_storage_that_policies_use_is_not_deleted_without_force(lifeboat: Lifeboat, tmp_path: Path) -> None:
    source = write(tmp_path / "in" / "app.yaml", as_yaml(a_storage()) + "---\n" + as_yaml(a_policy()))
    lifeboat("apply", "-f", str(source))
    refused = lifeboat("delete", "storage", "local")
    assert refused.code == 1
    assert refused.err.strip() == (
        'error: BackupStorage "local" is used by BackupPolicy wordpress001; '
        "delete or repoint them first, or delete with --force"
    )
    assert lifeboat("get", "storage", "local").code == 0
    both = lifeboat("delete", "-f", str(source))  # the policy goes first, then its storage
    assert both.code == 0, both.err
    assert both.out.splitlines() == ["backuppolicy/wordpress001 deleted", "backupstorage/local deleted"]
    lifeboat("apply", "-f", str(source))
    assert lifeboat("delete", "storage", "local", "--force").code == 0


def test_a_policy_of_host_paths_is_backed_up_on_demand(lifeboat: Lifeboat, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = write(tmp_path / "etc-platform" / "platform.conf", "tier=demo\n").parent
    storage = a_storage(spec={"local": {"path": str(tmp_path / "repo")}, "encryption": {"passphrase": {"env": "P"}}})
    policy = a_policy("platform", spec={"app": None, "paths": [str(data)], "schedule": None})
    source = write(tmp_path / "in" / "platform.yaml", as_yaml(storage) + "---\n" + as_yaml(policy))
    monkeypatch.setenv("P", "paths passphrase")
    assert lifeboat("apply", "-f", str(source)).code == 0
    assert lifeboat("repo", "--storage", "local", "init").code == 0
    neither = lifeboat("backup")
    assert neither.code == 2 and "give APP, or --policy NAME" in neither.err
    made = lifeboat("backup", "--policy", "platform", "-o", "json")
    assert made.code == 0, made.err
    backup = json.loads(made.out)["backup"]
    assert (backup["policy"], backup["status"], backup["backup_type"]) == ("platform", "completed", "full")
    assert [item["name"] for item in json.loads(made.out)["items"]] == [f"paths/{str(data).strip('/')}"]

    # Another policy writes to the same storage after it: `latest` narrowed by --path or
    # --policy, or the backup's id, still finds the platform's data (the README's quickstart).
    other = write(tmp_path / "srv-other" / "other.txt", "other\n").parent
    second = a_policy("other", spec={"app": None, "paths": [str(other)], "schedule": None})
    assert lifeboat("apply", "-f", str(write(tmp_path / "in" / "other.yaml", as_yaml(second)))).code == 0
    assert lifeboat("backup", "--policy", "other").code == 0
    item = f"paths/{str(data).strip('/')}"
    for how in (
        ["latest", "--path", item],
        ["latest", "--policy", "platform", "--path", item],
        [backup["backup_id"], "--path", item],
    ):
        out = tmp_path / "restored" / how[0]
        restored = lifeboat("repo", "--storage", "local", "restore", *how, "--target", str(out))
        assert restored.code == 0, (how, restored.err)
        assert (out / "platform.conf").read_text() == "tier=demo\n"
    unknown = lifeboat("repo", "--storage", "local", "restore", "latest", "--policy", "nobody", "--target", str(out))
    assert unknown.code == 1 and unknown.err.startswith("error: no snapshot with policy=nobody in ")

    # One -o vocabulary for every verb that prints.
    named = lifeboat("backup", "--policy", "platform", "-o", "name")
    assert named.code == 0 and named.out.strip().startswith("platform-") and "\n" not in named.out.strip()
    ids = lifeboat("get", "backups", "-o", "name").out.split()
    assert len(ids) == 3 and named.out.strip() in ids and backup["backup_id"] in ids
    wide = lifeboat("get", "backups", "-o", "wide").out.splitlines()
    assert wide[0].split()[-4:] == ["STORAGE", "FILES", "ADDED", "SNAPSHOT"] and " local " in wide[1]
    as_yaml_out = yaml.safe_load(lifeboat("get", "backups", "-o", "yaml").out)
    assert sorted(b["backup_id"] for b in as_yaml_out) == sorted(ids)
    assert lifeboat("describe", "backup", ids[0], "-o", "name").out.strip() == ids[0]
    snapshots = yaml.safe_load(lifeboat("repo", "--storage", "local", "snapshots", "-o", "yaml").out)
    assert len(snapshots) == 3
    assert lifeboat("get", "policies", "-o", "name").out.split() == ["other", "platform"]
    assert lifeboat("repo", "--storage", "local", "snapshots", "-o", "text").code == 2  # one vocabulary, no other


def test_a_command_with_no_resources_directory_configured_says_so(lifeboat: Lifeboat) -> None:
    env = {k: v for k, v in lifeboat.env().items() if k != "LIFEBOAT_RESOURCES"}
    done = subprocess.run([LIFEBOAT, "get", "policies"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("warning: no resources directory is configured and ")
    assert "LIFEBOAT_RESOURCES" in warning and "NAME" in done.stdout  # the (empty) table still prints
    lifeboat.resources.mkdir(parents=True)
    assert lifeboat("get", "policies").err == ""  # configured: nothing to say


def test_ls_find_and_one_file_of_a_backup_in_one_command(lifeboat: Lifeboat, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = write(tmp_path / "etc-platform" / "conf.d" / "site.conf", "site=on\n").parent.parent
    write(data / "notes.txt", "notes\n")
    storage = a_storage(spec={"local": {"path": str(tmp_path / "repo")}, "encryption": {"passphrase": {"env": "P"}}})
    policy = a_policy("platform", spec={"app": None, "paths": [str(data)], "schedule": None})
    monkeypatch.setenv("P", "ls passphrase")
    assert (
        lifeboat(
            "apply", "-f", str(write(tmp_path / "in" / "all.yaml", as_yaml(storage) + "---\n" + as_yaml(policy)))
        ).code
        == 0
    )
    assert lifeboat("repo", "--storage", "local", "init").code == 0
    first = json.loads(lifeboat("backup", "--policy", "platform", "-o", "json").out)["backup"]["backup_id"]
    (data / "conf.d" / "site.conf").write_text("site=off\n")
    second = json.loads(lifeboat("backup", "--policy", "platform", "-o", "json").out)["backup"]["backup_id"]
    root = f"paths/{str(data).strip('/')}"

    listed = lifeboat("repo", "--storage", "local", "ls", first, root)
    assert listed.code == 0, listed.err
    assert listed.out.splitlines()[0].split() == ["TYPE", "MODE", "SIZE", "MODIFIED", "(UTC)", "PATH"]
    names = lifeboat("repo", "ls", first, root, "--storage", "local", "-o", "name").out.split()
    assert names == [root, f"{root}/conf.d", f"{root}/conf.d/site.conf", f"{root}/notes.txt"]
    found = json.loads(
        lifeboat("repo", "--storage", "local", "find", "*.conf", "--policy", "platform", "-o", "json").out
    )
    assert [(f["backup"], f["path"], f["size"]) for f in found] == [
        (second, f"{root}/conf.d/site.conf", 9),
        (first, f"{root}/conf.d/site.conf", 8),
    ]  # newest first
    assert (
        lifeboat("repo", "--storage", "local", "find", "*.conf", "--policy", "nobody", "-o", "json").out.strip() == "[]"
    )

    # `lifeboat restore` of host paths: not an app, so it points to --target; one file in one command.
    refused = lifeboat("restore", first)
    assert refused.code == 1 and f"lifeboat restore {first} --target DIR" in refused.out + refused.err
    out = tmp_path / "one-file"
    one = lifeboat("restore", first, "--target", str(out), "--path", f"{root}/conf.d/site.conf")
    assert one.code == 0, one.err
    assert [p.name for p in out.iterdir()] == ["site.conf"] and (out / "site.conf").read_text() == "site=on\n"
    assert lifeboat("restore", first, "--path", "x").code == 2  # --path needs --target
