import io
import tarfile
from pathlib import Path

import pytest

from asr.download import DownloadError, download, safe_extract, sha256sum


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            data = b"payload" if member.isfile() else None
            if data:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data else None)


def file_member(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def link_member(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    member.linkname = target
    return member


def test_extracts_a_clean_archive(tmp_path: Path) -> None:
    make_tar(tmp_path / "ok.tar.gz", [file_member("an4/etc/a.txt")])
    safe_extract(tmp_path / "ok.tar.gz", tmp_path / "out")
    assert (tmp_path / "out/an4/etc/a.txt").read_bytes() == b"payload"


@pytest.mark.parametrize(
    "bad",
    [file_member("/etc/evil"), file_member("an4/../../evil"), link_member("an4/l", "/etc/passwd"), link_member("an4/h", "an4/x", hard=True)],
)
def test_refuses_unsafe_members_and_writes_nothing(tmp_path: Path, bad: tarfile.TarInfo) -> None:
    make_tar(tmp_path / "bad.tar.gz", [file_member("an4/first.txt"), bad])
    with pytest.raises(DownloadError, match="refusing"):
        safe_extract(tmp_path / "bad.tar.gz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "x.tar.gz").write_text("nope")
    with pytest.raises(DownloadError, match="not a readable tar archive"):
        safe_extract(tmp_path / "x.tar.gz", tmp_path / "out")


def test_existing_download_is_verified(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"content")
    assert download("http://unused.invalid/a.tar.gz", archive, {sha256sum(archive)}) == archive
    with pytest.raises(DownloadError, match="not a known checksum"):
        download("http://unused.invalid/a.tar.gz", archive, {"0" * 64})
