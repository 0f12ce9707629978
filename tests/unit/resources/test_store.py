"""apply / diff / delete against a resources directory, keeping comments and status."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.errors import Conflict, ResourceNotFound
from controller.resources.backup_policy import BackupPolicyStatus
from controller.resources.loader import load_paths
from controller.resources.meta import spec_generation
from controller.resources.restore import RestorePhase, RestoreStatus
from controller.resources.store import Action, ResourceStore
from controller.resources.writeback import write_status
from tests.builders import a_policy, a_restore, a_storage, as_yaml


def incoming(tmp_path: Path, text: str, name: str = "in.yaml") -> list:  # type: ignore[type-arg]
    source = tmp_path / "input"
    source.mkdir(exist_ok=True)
    (source / name).write_text(text)
    result = load_paths([source / name])
    assert result.problems == []
    return result.resources


def test_apply_creates_a_file_per_resource_with_comments(tmp_path: Path) -> None:
    store = ResourceStore(tmp_path / "resources")
    text = "# my policy\n" + as_yaml(a_policy())
    changes = store.apply(incoming(tmp_path, text))
    assert [(c.kind, c.name, c.action) for c in changes] == [("BackupPolicy", "wordpress001", Action.CREATED)]
    assert (tmp_path / "resources" / "policies" / "wordpress001.yaml").read_text() == text


def test_apply_again_is_unchanged_and_does_not_touch_the_file(tmp_path: Path) -> None:
    store = ResourceStore(tmp_path / "resources")
    store.apply(incoming(tmp_path, as_yaml(a_policy())))
    path = tmp_path / "resources" / "policies" / "wordpress001.yaml"
    before = path.stat().st_mtime_ns
    assert store.apply(incoming(tmp_path, as_yaml(a_policy())))[0].action == Action.UNCHANGED
    assert path.stat().st_mtime_ns == before


def test_update_keeps_controller_status_and_ignores_status_in_input(tmp_path: Path) -> None:
    store = ResourceStore(tmp_path / "resources")
    store.apply(incoming(tmp_path, as_yaml(a_policy())))
    live = store.load().get("BackupPolicy", "wordpress001")
    assert live is not None
    write_status(live.path, live.kind, live.name, live.generation, BackupPolicyStatus(last_error="kept"))
    updated = a_policy(spec={"retention": {"keepLast": 9}}, status={"lastError": "from the user"})
    change = store.apply(incoming(tmp_path, as_yaml(updated)))[0]
    assert change.action == Action.CONFIGURED
    assert "-    keepLast: 7" in change.diff and "+    keepLast: 9" in change.diff
    data = yaml.safe_load(live.path.read_text())
    assert data["spec"]["retention"] == {"keepLast": 9}
    assert data["status"]["lastError"] == "kept"


def test_update_in_a_multi_document_file_leaves_neighbours_identical(tmp_path: Path) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    first = "# storage first\n" + as_yaml(a_storage())
    last = "# policy kept as is\n" + as_yaml(a_policy("gitea002"))
    (resources / "all.yaml").write_text(first + "---\n" + as_yaml(a_policy()) + "---\n" + last)
    store = ResourceStore(resources)
    store.apply(incoming(tmp_path, as_yaml(a_policy(spec={"suspend": True}))))
    text = (resources / "all.yaml").read_text()
    assert text.startswith(first + "---\n")
    assert text.endswith("---\n" + last)
    assert "suspend: true" in text


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    store = ResourceStore(tmp_path / "resources")
    changes = store.apply(incoming(tmp_path, as_yaml(a_policy())), dry_run=True)
    assert changes[0].action == Action.CREATED
    assert not (tmp_path / "resources").exists()


def test_diff_reports_spec_changes_only(tmp_path: Path) -> None:
    store = ResourceStore(tmp_path / "resources")
    store.apply(incoming(tmp_path, as_yaml(a_policy())))
    assert store.diff(incoming(tmp_path, "# comment only change\n" + as_yaml(a_policy())))[0].action == Action.UNCHANGED
    change = store.diff(incoming(tmp_path, as_yaml(a_policy(spec={"suspend": True}))))[0]
    assert change.action == Action.CONFIGURED
    assert "+  suspend: true" in change.diff


def test_delete_removes_one_document_and_keeps_the_others(tmp_path: Path) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    storage = as_yaml(a_storage())
    (resources / "all.yaml").write_text(storage + "---\n" + as_yaml(a_policy()))
    store = ResourceStore(resources)
    store.delete("BackupPolicy", "wordpress001")
    assert (resources / "all.yaml").read_text() == storage
    store.delete("BackupStorage", "local")
    assert not (resources / "all.yaml").exists()


def test_delete_first_document_keeps_the_rest(tmp_path: Path) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    policy = as_yaml(a_policy())
    (resources / "all.yaml").write_text(as_yaml(a_storage()) + "---\n" + policy)
    ResourceStore(resources).delete("BackupStorage", "local", force=True)  # its policy stays: forced
    assert (resources / "all.yaml").read_text() == policy


def test_delete_unknown_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResourceNotFound, match='BackupPolicy "nope" not found'):
        ResourceStore(tmp_path).delete("BackupPolicy", "nope")


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "RolledBack"])
def test_a_finished_restore_is_unchanged_when_applied_again_and_refuses_a_changed_spec(
    tmp_path: Path, phase: str
) -> None:
    store = ResourceStore(tmp_path / "resources")
    store.apply(incoming(tmp_path, as_yaml(a_restore())))
    path = tmp_path / "resources" / "restores" / "restore-1.yaml"
    write_status(
        path, "Restore", "restore-1", spec_generation({"backup": "bk-1"}), RestoreStatus(phase=RestorePhase(phase))
    )
    assert store.apply(incoming(tmp_path, as_yaml(a_restore())))[0].action == Action.UNCHANGED
    before = path.read_text()
    with pytest.raises(Conflict, match=f'Restore "restore-1" has finished \\({phase}\\) and never runs again'):
        store.apply(incoming(tmp_path, as_yaml(a_restore(spec={"backup": "bk-2"}))))
    assert path.read_text() == before


def test_a_pending_restore_can_still_be_changed(tmp_path: Path) -> None:
    store = ResourceStore(tmp_path / "resources")
    store.apply(incoming(tmp_path, as_yaml(a_restore())))
    assert store.apply(incoming(tmp_path, as_yaml(a_restore(spec={"backup": "bk-2"}))))[0].action == Action.CONFIGURED
