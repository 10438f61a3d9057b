import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from asr.download import DownloadError, checksum, download, safe_extract


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
    assert download("http://unused.invalid/a.tar.gz", archive, {checksum(archive)}) == archive
    with pytest.raises(DownloadError, match="not a known checksum"):
        download("http://unused.invalid/a.tar.gz", archive, {"0" * 64})


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` and honours ``Range: bytes=N-``, as openslr's servers do."""

    payload = bytes(range(256)) * 400
    fail_after: int | None = None  # the first request dies after this many bytes

    def do_GET(self) -> None:
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if RangeHandler.fail_after is not None:
            self.wfile.write(body[: RangeHandler.fail_after])
            RangeHandler.fail_after = None
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/subset.tar.gz"
    expected = hashlib.md5(RangeHandler.payload).hexdigest()
    RangeHandler.fail_after = 30000
    with pytest.raises(DownloadError, match="run again to resume"):
        download(url, tmp_path / "subset.tar.gz", {expected}, "md5")
    assert (tmp_path / "subset.tar.gz.part").stat().st_size == 30000
    assert download(url, tmp_path / "subset.tar.gz", {expected}, "md5").read_bytes() == RangeHandler.payload
    assert not (tmp_path / "subset.tar.gz.part").exists()
    with pytest.raises(DownloadError, match="not a known checksum"):
        download(url, tmp_path / "other.tar.gz", {"0" * 32}, "md5")
    assert not (tmp_path / "other.tar.gz.part").exists()  # a corrupt download is not kept to be "resumed"
    server.shutdown()
