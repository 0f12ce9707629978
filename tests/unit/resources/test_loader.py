"""Loading a tree of resource files: located problems, and the rest still loads."""

from __future__ import annotations

from pathlib import Path

from controller.resources.loader import load_paths
from tests.builders import a_policy, a_storage, as_yaml

BROKEN = Path(__file__).parents[2] / "fixtures" / "broken"
EXAMPLES = Path(__file__).parents[3] / "examples"
# Folders of resources; examples/apps holds Compose files of demo apps and
# examples/monitoring Prometheus rules, which are not.
RESOURCE_EXAMPLES = [
    EXAMPLES / "quickstart",
    EXAMPLES / "resources",
    EXAMPLES / "gitops",
    EXAMPLES / "deploy" / "resources",
]


def test_examples_are_all_valid() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == [
        "apps",
        "deploy",
        "gitops",
        "monitoring",
        "quickstart",
        "resources",
    ]
    kinds = set()
    for folder in RESOURCE_EXAMPLES:  # each folder is one host's resources
        result = load_paths([folder])
        assert result.problems == [], folder
        kinds |= {r.kind for r in result.resources}
    assert kinds == {"BackupStorage", "BackupPolicy", "Restore", "Notifier"}


def test_broken_fixtures_report_each_problem_with_file_line_and_field() -> None:
    result = load_paths([BROKEN])
    found = {(Path(p.file).name, p.line, p.field) for p in result.problems}
    assert found == {
        ("kinds.yaml", 2, "kind"),
        ("kinds.yaml", 7, "apiVersion"),
        ("schedule.yaml", 9, "spec.schedule.time"),
        ("schedule.yaml", 19, "spec.schedule.dayOfMonth"),
        ("secrets.yaml", 8, "spec.encryption.passphrase"),
        ("secrets.yaml", 13, "metadata.name"),
        ("secrets.yaml", 16, "spec.pointInTime"),
        ("syntax.yaml", 16, ""),
        ("duplicate-b.yaml", 2, "metadata.name"),
        ("notifiers.yaml", 7, "spec.webhook.url"),
        ("notifiers.yaml", 15, "spec.apprise.url"),
    }


def test_a_broken_document_does_not_stop_its_neighbours() -> None:
    result = load_paths([BROKEN])
    assert {(r.kind, r.name) for r in result.resources} == {("BackupStorage", "still-loads"), ("Restore", "twice")}


def test_duplicate_names_both_files() -> None:
    problem = next(p for p in load_paths([BROKEN]).problems if "duplicate" in p.message)
    assert problem.file.endswith("duplicate-b.yaml")
    assert "duplicate-a.yaml:1" in problem.message


def test_secret_value_never_appears_in_problems() -> None:
    assert all("correct-horse" not in str(p) for p in load_paths([BROKEN]).problems)


def test_root_inside_a_hidden_directory_still_loads(tmp_path: Path) -> None:
    root = tmp_path / ".lifeboat" / "resources"
    root.mkdir(parents=True)
    (root / "s.yaml").write_text(as_yaml(a_storage()))
    assert [r.name for r in load_paths([root]).resources] == ["local"]


def test_yml_suffix_nested_dirs_and_hidden_dirs(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "a" / "b" / "s.yml").write_text(as_yaml(a_storage()))
    (tmp_path / ".git" / "ignored.yaml").write_text("not: [valid")
    (tmp_path / "notes.txt").write_text("not yaml")
    result = load_paths([tmp_path])
    assert result.problems == []
    assert [r.name for r in result.resources] == ["local"]


def test_a_git_sync_checkout_is_read_through_its_link_and_old_worktrees_are_not(tmp_path: Path) -> None:
    """git-sync's layout: root/.git-sync/.worktrees/HASH, with the current one behind a
    symlink; the chart links resources/git to it. A loop of links ends the walk."""
    worktrees = tmp_path / ".git-sync" / ".worktrees"
    (worktrees / "old" / "policies").mkdir(parents=True)
    (worktrees / "new" / "policies").mkdir(parents=True)
    (worktrees / "old" / "policies" / "p.yaml").write_text(as_yaml(a_policy(name="removed-upstream")))
    (worktrees / "new" / "policies" / "p.yaml").write_text(as_yaml(a_policy(name="current")))
    (tmp_path / ".git-sync" / "checkout").symlink_to(".worktrees/new")
    (tmp_path / "git").symlink_to(".git-sync/checkout/policies")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "s.yaml").write_text(as_yaml(a_storage()))
    (tmp_path / "api" / "loop").symlink_to("..")
    result = load_paths([tmp_path])
    assert result.problems == []
    assert sorted(r.name for r in result.resources) == ["current", "local"]


def test_generation_is_a_stable_hash_of_spec(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(as_yaml(a_policy("one")))
    reordered = as_yaml(a_policy("two", spec={"app": "one"})).replace("  storage: local\n", "")
    reordered = reordered.replace("spec:\n", "spec:\n  storage: local  # same spec\n")
    (tmp_path / "two.yaml").write_text("# reordered and commented\n" + reordered)
    first, second = load_paths([tmp_path]).resources
    assert first.generation == second.generation
    (tmp_path / "two.yaml").write_text(as_yaml(a_policy("two", spec={"app": "one", "retention": {"keepLast": 8}})))
    assert load_paths([tmp_path]).resources[1].generation != first.generation


def test_empty_and_comment_only_documents_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("# header only\n---\n" + as_yaml(a_storage()) + "---\n# trailing\n")
    result = load_paths([tmp_path])
    assert (len(result.resources), result.problems) == (1, [])


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    result = load_paths([tmp_path / "nope"])
    assert [p.message for p in result.problems] == ["no such file or directory"]
