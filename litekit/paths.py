"""Check, before any work, that a file can be written where the user asked for it.

A long run that writes its result at the end (a checkpoint, a JSON summary) should learn at
the start that it cannot: otherwise hours of training end in a traceback naming a hidden
temporary file. `check_writable_file` looks without touching: it creates, opens and writes
nothing, so a refused path leaves the disk as it was.

litekit writes files atomically (a temporary file in the same folder, then a rename over the
target), so what must be writable is the folder, not an existing file at the path; the
folder is created first when it is missing, so the nearest folder that does exist must let
us create entries in it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["check_writable_file"]


def _bad_path(name: str, path: Path, fix: str) -> ValueError:
    """The house-style error ``name=path: fix``, with the whole path (never shortened)."""
    return ValueError(f"{name}={str(path)!r}: {fix}")


def _nearest_existing_folder(name: str, path: Path) -> Path:
    """The closest ancestor of ``path`` that exists; every ancestor that exists is a folder."""
    for ancestor in path.parents:
        if ancestor.is_symlink() and not ancestor.exists():
            raise _bad_path(
                name,
                path,
                f"{str(ancestor)!r} is a broken symbolic link, so the folder cannot be made; "
                "remove the link or pass another path.",
            )
        if ancestor.exists():
            if not ancestor.is_dir():
                raise _bad_path(
                    name,
                    path,
                    f"{str(ancestor)!r} is a file, not a folder, so nothing can be written "
                    "below it; pass a path inside a folder.",
                )
            return ancestor
    return Path(path.anchor or ".")  # pragma: no cover - the root or "." always exists


def _replaceable(path: Path, folder: Path) -> bool:
    """False when a sticky folder (like /tmp) forbids replacing another user's file."""
    euid = os.geteuid() if hasattr(os, "geteuid") else None
    if euid in (None, 0) or not folder.stat().st_mode & stat.S_ISVTX:
        return True
    return euid in (path.lstat().st_uid, folder.stat().st_uid)


def check_writable_file(name: str, path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path if a file can be written there; otherwise a ValueError.

    Checked, in this order, without creating or writing anything:
    1. ``path`` is not a folder;
    2. every ancestor of ``path`` that exists is a folder (not a file, not a broken link);
    3. the nearest existing ancestor folder lets this process create entries in it
       (``os.access`` with write and search permission), so the missing folders, a
       temporary file and the file itself can be made;
    4. an existing file at ``path`` can be replaced (in a sticky folder such as /tmp, only
       its owner or the folder's owner may replace it).

    ``os.access`` reports a read-only mount as not writable for every user, root included;
    folder permissions do not bind root, so for root a chmod-ed folder passes (and writing
    there does succeed). ``name`` is the argument the path came from (``"checkpoint"``,
    ``"--out"``): errors read ``name='path': what is wrong and what to do``.
    """
    path = Path(path)
    if path.is_dir():
        raise _bad_path(name, path, "this is a folder; pass a file path inside it.")
    folder = _nearest_existing_folder(name, path)
    if not os.access(folder, os.W_OK | os.X_OK):
        what = "the file" if folder == path.parent else "the missing folders"
        raise _bad_path(
            name,
            path,
            f"the folder {str(folder)!r} is not writable (a read-only disk, or its "
            f"permissions), so {what} cannot be created there; pass a path in a folder you "
            "can write to.",
        )
    if path.exists() and not _replaceable(path, folder):
        raise _bad_path(
            name,
            path,
            "the file belongs to another user in a folder that only lets owners replace "
            "files; pass another path.",
        )
    return path
