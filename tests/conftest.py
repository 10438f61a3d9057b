"""Shared fixtures: real AN4 audio unpacked once per test session.

The corpus is looked for at ``$AN4_ARCHIVE``, ``data/an4_sphere.tar.gz`` and
``../shared/data/an4_sphere.tar.gz``; tests that need it are skipped, with the
reason, where none is present.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asr.download import safe_extract

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = [
    os.environ.get("AN4_ARCHIVE", ""),
    ROOT / "data" / "an4_sphere.tar.gz",
    ROOT.parent / "shared" / "data" / "an4_sphere.tar.gz",
]
LIBRISPEECH_SAMPLE = ROOT.parent / "shared" / "data" / "librispeech-sample"


def find_an4_archive() -> Path | None:
    for candidate in CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def an4_archive() -> Path:
    archive = find_an4_archive()
    if archive is None:
        pytest.skip("AN4 archive not found (set AN4_ARCHIVE or link it into data/)")
    return archive


@pytest.fixture(scope="session")
def an4_dir(an4_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unpacked corpus (``.../an4`` with ``wav/`` and ``etc/``)."""
    root = tmp_path_factory.mktemp("an4")
    safe_extract(an4_archive, root)
    return root / "an4"


@pytest.fixture(scope="session")
def an4_files(an4_dir: Path) -> list[Path]:
    """A dozen training utterances of three speakers, sorted."""
    files = sorted((an4_dir / "wav" / "an4_clstk").glob("f*/*.sph"))
    return files[:12]
