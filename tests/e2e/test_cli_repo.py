"""`lifeboat repo` as a person runs it: exit codes, one-line errors, JSON, keys and kits."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.e2e.conftest import LIFEBOAT, Lifeboat
from tests.support.repository import random_bytes, write_tree
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, S3Endpoint

PASS = "tr0ub4dor&3"


@pytest.fixture
def repo_env(lifeboat: Lifeboat, tmp_path: Path) -> tuple[Lifeboat, Path, Path]:
    source = tmp_path / "src"
    write_tree(source, {"a.txt": b"alpha\n" * 100, "sub/b.bin": random_bytes(1, 300_000)})
    os.symlink("a.txt", source / "link")
    return lifeboat, tmp_path / "repo", source


def run(
    lifeboat: Lifeboat, *args: str, passphrase: str | None = PASS, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = lifeboat.env()
    env.pop("LIFEBOAT_PASSPHRASE", None)
    if passphrase is not None:
        env["LIFEBOAT_PASSPHRASE"] = passphrase
    env.update(extra)
    return subprocess.run([LIFEBOAT, *args], capture_output=True, text=True, env=env, timeout=120)


def test_init_backup_snapshots_restore_check(repo_env: tuple[Lifeboat, Path, Path], tmp_path: Path) -> None:
    lifeboat, repo, source = repo_env
    assert run(lifeboat, "repo", "--repo", str(repo), "init").returncode == 0
    backup = run(lifeboat, "repo", "--repo", str(repo), "backup", str(source), "--tag", "app=demo", "-o", "json")
    assert backup.returncode == 0, backup.stderr
    snapshot_id = json.loads(backup.stdout)["id"]
    listed = json.loads(run(lifeboat, "repo", "--repo", str(repo), "snapshots", "-o", "json").stdout)
    assert [(s["id"], s["tags"]["app"]) for s in listed] == [(snapshot_id, "demo")]
    restored = run(lifeboat, "repo", "--repo", str(repo), "restore", snapshot_id[:8], "--target", str(tmp_path / "out"))
    assert restored.returncode == 0, restored.stderr
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()
    assert os.readlink(tmp_path / "out" / "link") == "a.txt"
    checked = run(lifeboat, "repo", "--repo", str(repo), "check", "--read-data")
    assert checked.returncode == 0 and "no damage found" in checked.stdout


def test_progress_is_drawn_on_a_terminal_and_never_into_a_pipe(repo_env: tuple[Lifeboat, Path, Path]) -> None:
    lifeboat, repo, source = repo_env
    assert run(lifeboat, "repo", "--repo", str(repo), "init").returncode == 0
    bar = "\u2501"  # what rich draws a progress bar with
    opened = [("Repository passphrase:", PASS)]
    shown = lifeboat.on_terminal("repo", "--repo", str(repo), "backup", str(source), answers=opened)
    assert shown.code == 0, shown.out
    assert bar in shown.out and "files" in shown.out
    piped = run(lifeboat, "repo", "--repo", str(repo), "backup", str(source))
    assert piped.returncode == 0 and bar not in piped.stdout + piped.stderr


def test_seed_variable_backup_encryption_key_is_accepted(repo_env: tuple[Lifeboat, Path, Path]) -> None:
    lifeboat, repo, _ = repo_env
    assert (
        run(lifeboat, "repo", "--repo", str(repo), "init", passphrase=None, BACKUP_ENCRYPTION_KEY=PASS).returncode == 0
    )
    assert run(lifeboat, "repo", "--repo", str(repo), "snapshots").returncode == 0


def test_failures_are_one_line_with_exit_1_and_usage_errors_exit_2(repo_env: tuple[Lifeboat, Path, Path]) -> None:
    lifeboat, repo, _ = repo_env
    run(lifeboat, "repo", "--repo", str(repo), "init")
    wrong = run(lifeboat, "repo", "--repo", str(repo), "snapshots", passphrase="nope")
    assert (wrong.returncode, wrong.stderr) == (1, f"error: {repo}: wrong passphrase (no key file opens with it)\n")
    missing = run(lifeboat, "repo", "--repo", str(repo.parent / "nothing"), "snapshots")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no repository here" in missing.stderr
    nopass = run(lifeboat, "repo", "--repo", str(repo), "snapshots", passphrase=None)
    assert nopass.returncode == 1 and "LIFEBOAT_PASSPHRASE" in nopass.stderr
    usage = run(lifeboat, "repo", "snapshots")
    assert usage.returncode == 2 and "--repo LOCATION or --storage NAME" in usage.stderr
    unknown = run(lifeboat, "repo", "--repo", str(repo), "restore", "ffffffff", "--target", "/tmp/x")
    assert unknown.returncode == 1 and "no snapshot with id starting 'ffffffff'" in unknown.stderr
    assert "Traceback" not in wrong.stderr + missing.stderr + unknown.stderr


def test_damage_makes_check_exit_1_naming_the_pack(repo_env: tuple[Lifeboat, Path, Path]) -> None:
    lifeboat, repo, source = repo_env
    run(lifeboat, "repo", "--repo", str(repo), "init")
    run(lifeboat, "repo", "--repo", str(repo), "backup", str(source))
    pack = max((repo / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[50] ^= 1
    pack.write_bytes(bytes(data))
    checked = run(lifeboat, "repo", "--repo", str(repo), "check", "--read-data")
    assert checked.returncode == 1
    assert f"damage: data/{pack.parent.name}/{pack.name}" in checked.stdout and "Traceback" not in checked.stderr


def test_keys_passwd_and_recovery_kit(repo_env: tuple[Lifeboat, Path, Path], tmp_path: Path) -> None:
    lifeboat, repo, source = repo_env
    run(lifeboat, "repo", "--repo", str(repo), "init")
    run(lifeboat, "repo", "--repo", str(repo), "backup", str(source))
    kit = tmp_path / "kit.txt"
    assert run(lifeboat, "repo", "--repo", str(repo), "key", "export", "-f", str(kit)).returncode == 0
    assert kit.stat().st_mode & 0o777 == 0o600
    changed = run(lifeboat, "repo", "--repo", str(repo), "key", "passwd", LIFEBOAT_NEW_PASSPHRASE="new-secret")
    assert changed.returncode == 0, changed.stderr
    assert run(lifeboat, "repo", "--repo", str(repo), "snapshots").returncode == 1  # the old passphrase is gone
    assert run(lifeboat, "repo", "--repo", str(repo), "snapshots", passphrase="new-secret").returncode == 0
    # Every passphrase forgotten: the kit alone, with the storage, gets everything back.
    for key_file in (repo / "keys").iterdir():
        key_file.unlink()
    out = tmp_path / "out"
    restored = run(
        lifeboat,
        "repo",
        "--repo",
        str(repo),
        "--recovery-kit",
        str(kit),
        "restore",
        "latest",
        "--target",
        str(out),
        passphrase=None,
    )
    assert restored.returncode == 0, restored.stderr
    assert (out / "a.txt").read_bytes() == (source / "a.txt").read_bytes()
    imported = run(
        lifeboat,
        "repo",
        "--repo",
        str(repo),
        "key",
        "import",
        str(kit),
        passphrase=None,
        LIFEBOAT_NEW_PASSPHRASE="after-recovery",
    )
    assert imported.returncode == 0, imported.stderr
    assert run(lifeboat, "repo", "--repo", str(repo), "snapshots", passphrase="after-recovery").returncode == 0


def test_last_key_cannot_be_removed(repo_env: tuple[Lifeboat, Path, Path]) -> None:
    lifeboat, repo, _ = repo_env
    run(lifeboat, "repo", "--repo", str(repo), "init")
    key_id = json.loads(run(lifeboat, "repo", "--repo", str(repo), "key", "list", "-o", "json").stdout)[0]["id"]
    removed = run(lifeboat, "repo", "--repo", str(repo), "key", "remove", key_id[:8])
    assert removed.returncode == 1 and "refusing to remove the last key" in removed.stderr


def test_export_to_file_is_a_tar_of_the_snapshot(repo_env: tuple[Lifeboat, Path, Path], tmp_path: Path) -> None:
    lifeboat, repo, source = repo_env
    run(lifeboat, "repo", "--repo", str(repo), "init")
    run(lifeboat, "repo", "--repo", str(repo), "backup", str(source))
    out = tmp_path / "export.tar"
    assert (
        run(lifeboat, "repo", "--repo", str(repo), "export", "latest", "--path", "sub", "-f", str(out)).returncode == 0
    )
    with tarfile.open(out) as archive:
        assert archive.getnames() == ["b.bin"]  # like `restore --path sub`: the directory's contents
        member = archive.extractfile("b.bin")
        assert member is not None and member.read() == (source / "sub" / "b.bin").read_bytes()


def test_storage_by_resource_name_uses_its_secret_reference(lifeboat: Lifeboat, tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("from-a-file\n")
    resource = tmp_path / "storage.yaml"
    resource.write_text(f"""apiVersion: lifeboat.io/v1alpha1
kind: BackupStorage
metadata: {{name: nas}}
spec:
  local: {{path: {tmp_path / "nas-repo"}}}
  encryption:
    passphrase: {{file: {secret}}}
""")
    assert run(lifeboat, "apply", "-f", str(resource)).returncode == 0
    created = run(lifeboat, "repo", "--storage", "nas", "init", passphrase=None)
    assert created.returncode == 0, created.stderr
    listed = run(lifeboat, "repo", "--repo", str(tmp_path / "nas-repo"), "snapshots", passphrase="from-a-file")
    assert listed.returncode == 0, listed.stderr
    # The declared passphrase wins with --storage: a different LIFEBOAT_PASSPHRASE is refused, never used.
    same = run(lifeboat, "repo", "--storage", "nas", "snapshots", passphrase="from-a-file")
    assert same.returncode == 0, same.stderr
    other = run(lifeboat, "repo", "--storage", "nas", "snapshots", passphrase="another one")
    assert other.returncode == 1 and other.stderr.count("\n") == 1
    assert other.stderr.startswith(
        'error: LIFEBOAT_PASSPHRASE differs from the passphrase BackupStorage "nas" declares'
    )
    assert f"(spec.encryption.passphrase: file {secret})" in other.stderr and "another one" not in other.stderr


def test_s3_repository_by_location_with_standard_aws_variables(
    lifeboat: Lifeboat, tmp_path: Path, s3_endpoint: S3Endpoint
) -> None:
    source = tmp_path / "src"
    write_tree(source, {"uploads/photo.jpg": random_bytes(3, 200_000), "notes.txt": b"n" * 1000})
    location = f"s3://{s3_endpoint.new_bucket()}/hosts/docker01"
    aws = {
        "AWS_ENDPOINT_URL": s3_endpoint.url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
    }
    assert run(lifeboat, "repo", "--repo", location, "init", **aws).returncode == 0
    backed_up = run(lifeboat, "repo", "--repo", location, "backup", str(source), **aws)
    assert backed_up.returncode == 0, backed_up.stderr
    restored = run(lifeboat, "repo", "--repo", location, "restore", "latest", "--target", str(tmp_path / "out"), **aws)
    assert restored.returncode == 0, restored.stderr
    assert (tmp_path / "out" / "uploads" / "photo.jpg").read_bytes() == random_bytes(3, 200_000)
    missing = run(lifeboat, "repo", "--repo", "s3://no-such-bucket-here/x", "snapshots", **aws)
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("the bucket does not exist (create it first)"), missing.stderr


def test_s3_storage_resource_with_secret_references(
    lifeboat: Lifeboat, tmp_path: Path, s3_endpoint: S3Endpoint
) -> None:
    bucket = s3_endpoint.new_bucket()
    (tmp_path / "storage.yaml").write_text(f"""apiVersion: lifeboat.io/v1alpha1
kind: BackupStorage
metadata: {{name: offsite}}
spec:
  s3:
    bucket: {bucket}
    prefix: lifeboat
    endpoint: {s3_endpoint.url}
    region: us-east-1
    pathStyle: true
    credentials:
      accessKeyId: {{env: OFFSITE_KEY}}
      secretAccessKey: {{env: OFFSITE_SECRET}}
  encryption:
    passphrase: {{env: OFFSITE_PASSPHRASE}}
""")
    assert run(lifeboat, "apply", "-f", str(tmp_path / "storage.yaml")).returncode == 0
    secrets = {"OFFSITE_KEY": ACCESS_KEY, "OFFSITE_SECRET": SECRET_KEY, "OFFSITE_PASSPHRASE": "offsite-pass"}
    created = run(lifeboat, "repo", "--storage", "offsite", "init", passphrase=None, **secrets)
    assert created.returncode == 0, created.stderr
    keys = s3_endpoint.client().list_objects_v2(Bucket=bucket, Prefix="lifeboat/keys/")
    assert keys["KeyCount"] == 1
    unset = run(
        lifeboat, "repo", "--storage", "offsite", "snapshots", passphrase=None, OFFSITE_PASSPHRASE="offsite-pass"
    )
    assert unset.returncode == 1
    assert "accessKeyId: environment variable OFFSITE_KEY is not set" in unset.stderr


def test_passphrases_are_asked_on_a_terminal_hidden_and_twice_for_init(lifeboat: Lifeboat, tmp_path: Path) -> None:
    repo = str(tmp_path / "asked")
    mistyped = lifeboat.on_terminal(
        "repo",
        "init",
        "--repo",
        repo,
        answers=[
            ("Repository passphrase:", "correct horse"),
            ("Repeat for confirmation:", "correct hose"),  # a typo: asked again
            ("Repository passphrase:", "correct horse"),
            ("Repeat for confirmation:", "correct horse"),
        ],
    )
    assert mistyped.code == 0, mistyped.out
    assert "do not match" in mistyped.out and "created repository" in mistyped.out
    assert "correct" not in mistyped.out  # never echoed
    opened = lifeboat.on_terminal(
        "repo", "snapshots", "--repo", repo, answers=[("Repository passphrase:", "correct horse")]
    )
    assert opened.code == 0 and "ID" in opened.out and "Repeat" not in opened.out  # asked once to open
    wrong = lifeboat.on_terminal("repo", "snapshots", "--repo", repo, answers=[("Repository passphrase:", "wrong")])
    assert wrong.code != 0 and "passphrase" in wrong.out.lower()
    piped = lifeboat("repo", "snapshots", "--repo", repo)  # no terminal: one line saying what to set
    assert piped.code != 0 and "LIFEBOAT_PASSPHRASE" in piped.err


def test_every_verbs_help_works_without_a_repository_and_its_options_come_after_the_verb_too(
    lifeboat: Lifeboat, tmp_path: Path
) -> None:
    for verb in ["init", "backup", "snapshots", "restore", "check", "forget", "prune", "export", "unlock"]:
        shown = lifeboat("repo", verb, "--help")
        assert shown.code == 0 and "--repo LOCATION" in shown.out and "--passphrase-file" in shown.out, verb
    assert lifeboat("repo", "key", "export", "--help").code == 0
    repo = str(tmp_path / "after")
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("after the verb\n")
    assert lifeboat("repo", "init", "--repo", repo, "--passphrase-file", str(passphrase)).code == 0
    listed = lifeboat("repo", "--repo", repo, "snapshots", "--passphrase-file", str(passphrase), "-o", "json")
    assert listed.code == 0 and json.loads(listed.out) == []
    neither = lifeboat("repo", "snapshots")
    assert neither.code == 2 and "give exactly one of --repo LOCATION or --storage NAME" in neither.err
