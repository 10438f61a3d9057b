"""Utterances per second read and decoded from individual files and from WebDataset shards.

Both paths are the trainer's own: ``asr.audio.load_audio`` on each file a
manifest names, and ``asr.shards.ShardSource`` (WebDataset) with
``load_audio`` on the bytes each shard holds; one process, manifest order.

By default every file and shard is first dropped from the operating system's
page cache (``posix_fadvise(DONTNEED)``), as a corpus of thousands of hours,
larger than memory, is read; ``--warm`` reads what the cache holds, after one
untimed pass.

    python benchmarks/shard_reading.py exp/an4/manifests/train.jsonl --shards exp/an4/shards/train
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from asr.audio import load_audio
from asr.data import read_manifest
from asr.shards import ShardSource, read_index, write_shards


def evict(paths: list[str]) -> None:
    """Drop the files from the page cache, so the next read comes from the disk."""
    for path in paths:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def rate(read: Callable[[], int], files: list[str], warm: bool) -> float:
    """Utterances per second of one pass."""
    if warm:
        read()
    else:
        evict(files)
    start = time.perf_counter()
    count = read()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("--shards", help="folder written by 'asr shards' from the manifest (default: written to a temporary folder)")
    parser.add_argument("--utterances-per-shard", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm", action="store_true", help="read from the page cache instead of the disk")
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args()

    utterances = read_manifest(args.manifest)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.shards or write_shards(utterances, scratch, args.utterances_per_shard) and scratch
        source = ShardSource(folder, shuffle=False)
        shard_files, size = read_index(folder)
        audio_files = [u.audio_filepath for u in utterances]

        def from_files() -> int:
            return sum(1 for u in utterances if load_audio(u.audio_filepath, args.sample_rate).numel())

        def from_shards() -> int:
            return sum(1 for u, audio in source(0, 0, 1) if load_audio(audio, args.sample_rate, name=u.audio_filepath).numel())

        files, shards = [], []
        for round_number in range(1, args.rounds + 1):  # alternately, so that a busy moment hits both
            files.append(rate(from_files, audio_files, args.warm))
            shards.append(rate(from_shards, shard_files, args.warm))
            print(f"round {round_number}: files {files[-1]:.0f}, shards {shards[-1]:.0f} utterances per second", flush=True)
    cache = "page cache (warm)" if args.warm else "disk (evicted from the page cache before each pass)"
    print(
        f"{len(utterances)} utterances, {len(shard_files)} shards, read from the {cache}; median of {args.rounds}:"
        f" individual files {statistics.median(files):.0f}, shards {statistics.median(shards):.0f} utterances per second"
    )
    assert size.utterances == len(utterances), f"{folder} holds {size.utterances} utterances, the manifest {len(utterances)}"


if __name__ == "__main__":
    main()
