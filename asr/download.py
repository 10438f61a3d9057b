"""Fetching corpus archives with a checksum, and unpacking them safely."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
from pathlib import Path


class DownloadError(Exception):
    """An archive that could not be fetched, verified or unpacked; the message says which and why."""


def checksum(path: str | Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, destination: str | Path, checksums: set[str], algorithm: str = "sha256") -> Path:
    """Download ``url`` to ``destination`` unless a verified copy is there; check the checksum.

    The file is written under a temporary name (``.part``) first, so an
    interrupted download never passes for a complete one; run again, it asks
    the server for the rest only (an HTTP range request) and starts over if the
    server cannot resume.
    """
    destination = Path(destination)
    if destination.exists():
        verify(destination, checksums, algorithm)
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    print(f"downloading {url} to {destination}" + (f" (resuming after {have} bytes)" if have else ""))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = have and response.status == 206
            with partial.open("ab" if resumed else "wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
            length = response.headers.get("Content-Length")
            if length is not None and partial.stat().st_size < (have if resumed else 0) + int(length):
                raise OSError("the connection closed before the end of the file")
    except OSError as error:  # the partial file stays, for the next run to resume
        raise DownloadError(f"{url}: download failed ({error}); run again to resume") from None
    try:
        verify(partial, checksums, algorithm)
    except DownloadError:
        partial.unlink()
        raise
    partial.replace(destination)
    return destination


def verify(path: Path, checksums: set[str], algorithm: str = "sha256") -> None:
    actual = checksum(path, algorithm)
    if actual not in checksums:
        raise DownloadError(f"{path}: {algorithm} {actual} is not a known checksum of this file")


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
