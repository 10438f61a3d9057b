"""What audio a command line names: files, folders, glob patterns and manifests.

A folder means every audio file under it (by extension, recursively); a
pattern means the files it matches (``**`` crosses folders); a ``.jsonl`` or
``.json`` file is a manifest whose ``audio_filepath`` entries are the files.
Anything else is taken as a file, so a missing one is reported where it is
read, like any unreadable file.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from asr.audio import AUDIO_EXTENSIONS
from asr.data import read_manifest

MANIFEST_EXTENSIONS = (".jsonl", ".json")


def expand_inputs(arguments: list[str]) -> tuple[list[str], list[str]]:
    """The audio files named by ``arguments``, in order, and one-line problems (a pattern matching nothing).

    A bad manifest raises :class:`asr.data.ManifestError`.
    """
    files: list[str] = []
    problems: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
            if not found:
                problems.append(f"{argument}: no audio files in this folder ({', '.join(AUDIO_EXTENSIONS)})")
            files += found
        elif path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
            files += [u.audio_filepath for u in read_manifest(path)]
        elif not path.exists() and glob.has_magic(argument):
            found = sorted(p for p in glob.glob(argument, recursive=True) if os.path.isfile(p))
            if not found:
                problems.append(f"{argument}: the pattern matches no files")
            files += found
        else:
            files.append(argument)
    return files, problems


def output_names(files: list[str], extension: str) -> dict[str, str]:
    """A distinct output file name for each input: its path below the inputs' common folder, new extension.

    ``a/x.wav`` and ``b/x.wav`` become ``a/x.srt`` and ``b/x.srt``; files of one folder keep their bare names.
    """
    existing = [os.path.abspath(f) for f in files if os.path.isfile(f)]  # a missing file is never written
    root = os.path.commonpath([os.path.dirname(f) for f in existing]) if existing else os.getcwd()
    return {f: str(Path(os.path.relpath(os.path.abspath(f), root)).with_suffix("." + extension)) for f in files}
