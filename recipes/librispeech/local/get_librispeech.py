"""Stage 0: find or download LibriSpeech subsets (and the official n-gram LM) and unpack them safely.

A subset is taken from ``--librispeech-dir`` (or ``$LIBRISPEECH_DIR``) when it
holds ``LibriSpeech/<subset>/`` or ``<subset>/``; otherwise its archive is
downloaded from openslr.org into ``DATA_DIR``, resuming a partial download,
checked against its published checksum, and unpacked into
``DATA_DIR/LibriSpeech/<subset>``. Prints, for each subset, the folder later
stages read.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
from pathlib import Path

from asr.download import DownloadError, download, safe_extract

URL = "https://www.openslr.org/resources/12/{subset}.tar.gz"
# SHA-256 of openslr's archives, as published in torchaudio's LIBRISPEECH dataset.
SHA256 = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}
LM_URL = "https://www.openslr.org/resources/11/{name}"
# MD5 of openslr's language models, from its md5sum list (openslr publishes MD5 only for these).
LM_MD5 = {
    "3-gram.arpa.gz": "74cbb837e582378c26c602e1c8cbcb9c",
    "3-gram.pruned.1e-7.arpa.gz": "9a0f1325bcaf3a0f7b7be4be10823c2a",
    "3-gram.pruned.3e-7.arpa.gz": "8f67ec741827742eee05799ab7605b50",
    "4-gram.arpa.gz": "6abdcd5b055bd482e4f9defe91d40408",
}


def local_subset(root: Path | None, subset: str) -> Path | None:
    if root is None:
        return None
    for candidate in (root / "LibriSpeech" / subset, root / subset):
        if candidate.is_dir():
            return candidate
    return None


def get_subset(subset: str, root: Path | None, data_dir: Path) -> Path:
    """The folder of ``subset``: the user's local copy, one unpacked before, or a fresh download."""
    found = local_subset(root, subset)
    if found is not None:
        return found
    unpacked = data_dir / "LibriSpeech" / subset
    if (unpacked / ".unpacked").exists():
        return unpacked
    archive = download(URL.format(subset=subset), data_dir / f"{subset}.tar.gz", {SHA256[subset]})
    safe_extract(archive, data_dir)
    (unpacked / ".unpacked").touch()
    return unpacked


def get_lm(name: str, local: Path | None, out: Path, data_dir: Path) -> Path:
    """The official n-gram as a plain ARPA file at ``out`` (KenLM and our vocabulary reader read it as text)."""
    if out.exists():
        return out
    source = local if local is not None else download(LM_URL.format(name=name), data_dir / name, {LM_MD5[name]}, "md5")
    opener = gzip.open if str(source).endswith(".gz") else open
    partial = out.with_name(out.name + ".part")
    with opener(source, "rb") as compressed, partial.open("wb") as plain:
        shutil.copyfileobj(compressed, plain, length=1 << 20)
    partial.replace(out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("subsets", nargs="*", help="e.g. train-clean-100 dev-clean test-clean")
    parser.add_argument("--librispeech-dir", default=os.environ.get("LIBRISPEECH_DIR"), help="a local copy (default: $LIBRISPEECH_DIR)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--lm", choices=sorted(LM_MD5), help="also fetch this official LM, unpacked to --lm-out")
    parser.add_argument("--lm-file", help="a local copy of the LM (.arpa or .arpa.gz) instead of downloading it")
    parser.add_argument("--lm-out", help="where to write the ARPA file")
    args = parser.parse_args()
    root = Path(args.librispeech_dir) if args.librispeech_dir else None
    try:
        for subset in args.subsets:
            if subset not in SHA256:
                raise DownloadError(f"{subset}: not a LibriSpeech subset ({', '.join(SHA256)})")
            print(f"{subset}: {get_subset(subset, root, Path(args.data_dir))}")
        if args.lm:
            lm = get_lm(args.lm, Path(args.lm_file) if args.lm_file else None, Path(args.lm_out), Path(args.data_dir))
            print(f"language model: {lm}")
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
