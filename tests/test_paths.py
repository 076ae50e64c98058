"""litekit.paths.check_writable_file: says before any work whether a file can be written,
and touches nothing either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import permissions_bind

from litekit import paths
from litekit.paths import check_writable_file

skip_unless_permissions_bind = pytest.mark.skipif(
    not permissions_bind(), reason="folder permissions do not bind this process (root)"
)


def snapshot(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.lstat().st_mode) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "relative", ["out.json", "new/out.json", "new/deeper/out.json", "existing.json"]
)
def test_a_writable_path_is_returned_and_nothing_is_created(tmp_path, relative):
    (tmp_path / "existing.json").write_text("{}")
    before = snapshot(tmp_path)
    assert check_writable_file("out", tmp_path / relative) == tmp_path / relative
    assert snapshot(tmp_path) == before


def test_a_relative_path_is_checked_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_writable_file("out", "run.json") == Path("run.json")
    (tmp_path / "notes").write_text("")
    with pytest.raises(ValueError, match=r"^out='notes/run.json': 'notes' is a file"):
        check_writable_file("out", "notes/run.json")


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^checkpoint='.*': this is a folder; pass a file"):
        check_writable_file("checkpoint", tmp_path)


@pytest.mark.parametrize("depth", [1, 3])
def test_a_file_where_a_folder_should_be_is_named(tmp_path, depth):
    (tmp_path / "notes.txt").write_text("mine")
    path = tmp_path.joinpath("notes.txt", *["sub"] * (depth - 1), "summary.json")
    with pytest.raises(ValueError) as error:
        check_writable_file("--out", path)
    assert str(error.value).startswith(f"--out={str(path)!r}: ")
    assert f"{str(tmp_path / 'notes.txt')!r} is a file, not a folder" in str(error.value)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_broken_link_where_a_folder_should_be_is_named(tmp_path):
    (tmp_path / "runs").symlink_to(tmp_path / "gone")
    with pytest.raises(ValueError, match=r"'.*runs' is a broken symbolic link"):
        check_writable_file("--out", tmp_path / "runs" / "summary.json")


@pytest.mark.parametrize("relative", ["out.json", "missing/out.json"])
def test_a_folder_the_process_cannot_write_is_refused(tmp_path, monkeypatch, relative):
    """Simulated (as a read-only mount looks to root too): os.access says no."""
    monkeypatch.setattr(paths.os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(ValueError) as error:
        check_writable_file("--checkpoint", tmp_path / relative)
    message = str(error.value)
    assert f"the folder {str(tmp_path)!r} is not writable" in message
    what = "the file" if relative == "out.json" else "the missing folders"
    assert f"so {what} cannot be created there; pass a path in a folder you can" in message


@skip_unless_permissions_bind
def test_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "old.json").write_text("{}")
    locked.chmod(0o555)
    try:
        for path in (locked / "new.json", locked / "old.json", locked / "a" / "b.json"):
            with pytest.raises(ValueError, match=r"the folder '.*locked' is not writable"):
                check_writable_file("--out", path)
    finally:
        locked.chmod(0o755)


def test_a_long_path_in_an_error_keeps_its_file_name(tmp_path):
    """Errors shorten long values in the middle, so the file a user named stays visible."""
    from litekit._checks import bad_argument

    deep = tmp_path.joinpath(*["a-long-folder-name"] * 12, "weights.pt")
    message = str(bad_argument("weights", deep, "pass an existing file."))
    assert message.startswith(f"weights='{str(deep)[:40]}") and "..." in message
    assert message.endswith("a-long-folder-name/weights.pt': pass an existing file.")
    short = str(bad_argument("weights", tmp_path / "w.pt", "fix."))
    assert short == f"weights={str(tmp_path / 'w.pt')!r}: fix."
    long_list = list(range(100))
    assert str(bad_argument("sizes", long_list, "fix.")).endswith("97, 98, 99]: fix.")
