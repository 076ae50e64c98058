"""An optional download helper with checksums. Nothing else in litekit touches the network.

    python -m litekit.data.download omniglot            # into data/omniglot/
    python -m litekit.data.download URL --md5 HASH      # any archive whose checksum you know

It is never run by the tests or by ``make``. Every file is checked against its MD5 or
SHA-256 before it is kept; the download goes to a temporary file that is renamed only once
the checksum matches, so an interrupted or corrupt download never leaves a file that looks
complete. A file that is already there is kept when its checksum matches, and never
overwritten when it does not, and unzipping never replaces a file that is already there.
Without a network it fails at once with a message that says
how to get the files by hand (data/README.md).

Known datasets: ``omniglot`` (its archives and MD5 checksums are those torchvision's
Omniglot class uses, read from the installed torchvision). Mini-ImageNet has no official
archive and ORBIT is downloaded from its figshare page; data/README.md explains both.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from litekit._checks import bad_argument

README = "data/README.md"


class DownloadError(OSError):
    """A download failed: no network, an HTTP error, or a checksum that does not match."""


@dataclass(frozen=True)
class Archive:
    """One file to fetch: where from, its name on disk, and its checksum."""

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None
    extract: bool = True


def known_archives() -> dict[str, list[Archive]]:
    """The datasets `download` knows by name."""
    from torchvision.datasets import Omniglot

    omniglot = [
        Archive(f"{Omniglot.download_url_prefix}/{name}.zip", f"{name}.zip", md5=md5)
        for name, md5 in sorted(Omniglot.zips_md5.items())
    ]
    return {"omniglot": omniglot}


def checksum(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file (``"md5"`` or ``"sha256"``), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches(path: Path, archive: Archive) -> bool:
    if archive.sha256 is not None:
        return checksum(path, "sha256") == archive.sha256.lower()
    return checksum(path, "md5") == archive.md5.lower()


def fetch(archive: Archive, folder: str | os.PathLike, *, timeout: float = 60) -> Path:
    """Download one archive into ``folder`` (checked, atomic); return its path."""
    if archive.md5 is None and archive.sha256 is None:
        raise bad_argument(
            "checksum", None, "pass md5= or sha256=: litekit keeps no unchecked download."
        )
    folder = Path(folder)
    target = folder / archive.filename
    if target.exists():
        if _matches(target, archive):
            return target
        raise DownloadError(
            f"{target} is already there but its checksum does not match {archive.url}; "
            "litekit will not overwrite it. Move it away and run the download again."
        )
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{archive.filename}.", dir=folder)
    try:
        try:
            with os.fdopen(handle, "wb") as out:  # closes the handle whatever urlopen does
                with urllib.request.urlopen(archive.url, timeout=timeout) as response:
                    for block in iter(lambda: response.read(2**20), b""):
                        out.write(block)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise DownloadError(
                f"could not download {archive.url} ({error}). Without a network connection, "
                f"get the file by hand as {README} describes and put it at {target}."
            ) from error
        if not _matches(Path(temporary), archive):
            raise DownloadError(
                f"{archive.url} arrived with a checksum that does not match; the download was "
                "discarded. Try again, or fetch the file by hand."
            )
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


def unpack(archive: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Extract a zip archive into ``folder``, leaving every file already there untouched."""
    folder = Path(folder)
    with zipfile.ZipFile(archive) as opened:
        for member in opened.infolist():
            if not (folder / member.filename).exists():
                opened.extract(member, folder)


def download(
    name: str,
    root: str | os.PathLike = "data",
    *,
    md5: str | None = None,
    sha256: str | None = None,
    extract: bool = True,
    timeout: float = 60,
) -> Path:
    """Fetch a known dataset (``"omniglot"``) or a URL with a checksum into ``root``.

    Returns the folder the archives (and, with ``extract``, their contents) are in:
    ``root/<name>`` for a known dataset, ``root`` for a URL.
    """
    archives = known_archives()
    if name in archives:
        folder = Path(root) / name
        chosen = archives[name]
    elif "://" in name:
        if md5 is None and sha256 is None:
            raise bad_argument(
                "md5",
                None,
                "a URL needs its checksum: pass md5= or sha256= (litekit keeps "
                "no unchecked download).",
            )
        folder = Path(root)
        filename = name.rstrip("/").rsplit("/", 1)[-1] or "download"
        chosen = [Archive(name, filename, md5=md5, sha256=sha256, extract=extract)]
    else:
        raise bad_argument(
            "name", name, f"pass one of {sorted(archives)} or a URL with md5= or sha256=."
        )
    for archive in chosen:
        path = fetch(archive, folder, timeout=timeout)
        if extract and archive.extract and zipfile.is_zipfile(path):
            unpack(path, folder)
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m litekit.data.download", description=__doc__.splitlines()[0]
    )
    parser.add_argument("name", help="a known dataset (omniglot) or a URL")
    parser.add_argument("--root", default="data")
    parser.add_argument("--md5")
    parser.add_argument("--sha256")
    parser.add_argument("--no-extract", dest="extract", action="store_false")
    args = parser.parse_args(argv)
    try:
        folder = download(
            args.name, args.root, md5=args.md5, sha256=args.sha256, extract=args.extract
        )
    except DownloadError as error:
        raise SystemExit(f"download failed: {error}") from None
    print(f"done: {folder}")


if __name__ == "__main__":
    main()
