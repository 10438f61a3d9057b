"""Fetching corpus archives with a checksum, and unpacking them safely."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
from pathlib import Path


class DownloadError(Exception):
    """An archive that could not be fetched, verified or unpacked; the message says which and why."""


def sha256sum(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, destination: str | Path, sha256: set[str]) -> Path:
    """Download ``url`` to ``destination`` unless a verified copy is there; check the checksum.

    The file is written under a temporary name first, so an interrupted
    download never passes for a complete one.
    """
    destination = Path(destination)
    if destination.exists():
        verify(destination, sha256)
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    print(f"downloading {url} to {destination}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{url}: download failed ({error})") from None
    verify(partial, sha256)
    partial.replace(destination)
    return destination


def verify(path: Path, sha256: set[str]) -> None:
    actual = sha256sum(path)
    if actual not in sha256:
        raise DownloadError(f"{path}: sha256 {actual} is not a known checksum of this archive")


def safe_extract(archive: str | Path, destination: str | Path) -> None:
    """Unpack a tar archive, refusing absolute paths, ``..`` and links of any kind.

    Every member is checked before anything is written, so a hostile archive
    leaves nothing behind.
    """
    archive, destination = Path(archive), Path(destination)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                name = Path(member.name)
                if name.is_absolute() or ".." in name.parts:
                    raise DownloadError(f"{archive}: refusing member with an unsafe path: {member.name}")
                if member.issym() or member.islnk():
                    raise DownloadError(f"{archive}: refusing link member: {member.name}")
                if not (member.isfile() or member.isdir()):
                    raise DownloadError(f"{archive}: refusing special member: {member.name}")
            destination.mkdir(parents=True, exist_ok=True)
            tar.extractall(destination, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DownloadError(f"{archive}: not a readable tar archive ({error})") from None
