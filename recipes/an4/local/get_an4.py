"""Stage 0: find or download the AN4 archive and unpack it safely.

The archive is taken from, in order: ``--archive``, ``$AN4_ARCHIVE``,
``DATA_DIR/an4_sphere.tar.gz``; failing all three it is downloaded from CMU and
its checksum checked.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from asr.download import DownloadError, download, safe_extract

AN4_URL = "http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz"
AN4_SHA256 = {
    # CMU's archive, as recorded for NeMo's mirror of it (not verifiable from a machine without internet).
    "a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12",
    # The same corpus repacked (identical files and layout), as shipped to the project's CI machines.
    "57e41b3f4fd615858e07f676e7e1c1cc060f299fb651fb4928288f88bf3e5902",
}
EXPECTED_FILES = {"an4_clstk": 948, "an4test_clstk": 130}


def find_archive(option: str | None, data_dir: Path) -> Path:
    for candidate in (option, os.environ.get("AN4_ARCHIVE")):
        if candidate:
            if not Path(candidate).is_file():
                raise DownloadError(f"{candidate}: no such archive")
            return Path(candidate)
    local = data_dir / "an4_sphere.tar.gz"
    if local.exists():
        return local
    return download(AN4_URL, local, AN4_SHA256)


def check_layout(an4_dir: Path) -> None:
    """Refuse an archive that is not AN4's official layout before later stages trip over it."""
    for folder, expected in EXPECTED_FILES.items():
        found = len(list((an4_dir / "wav" / folder).glob("*/*.sph")))
        if found != expected:
            raise DownloadError(f"{an4_dir / 'wav' / folder}: expected {expected} .sph files, found {found}")
    for name in ("an4_train.transcription", "an4_train.fileids", "an4_test.transcription", "an4_test.fileids"):
        if not (an4_dir / "etc" / name).is_file():
            raise DownloadError(f"{an4_dir / 'etc' / name}: missing from the archive")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", help="local an4_sphere.tar.gz (default: $AN4_ARCHIVE)")
    parser.add_argument("--data-dir", default="data", help="where the corpus is unpacked (DATA_DIR/an4)")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    an4_dir = data_dir / "an4"
    done = an4_dir / ".unpacked"
    try:
        if done.exists():
            print(f"{an4_dir} already unpacked; nothing to do")
            return 0
        archive = find_archive(args.archive, data_dir)
        print(f"unpacking {archive} into {data_dir}")
        safe_extract(archive, data_dir)
        check_layout(an4_dir)
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    done.write_text(f"{archive.resolve()}\n")
    print(f"unpacked AN4 into {an4_dir} (licence: {an4_dir / 'LICENSE'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
