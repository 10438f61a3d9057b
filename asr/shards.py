"""A corpus packed into WebDataset shards: tar archives read front to back, shuffled by shard.

Thousands of hours in millions of small files make every epoch a million
random reads, slow on network filesystems and object stores; a few hundred
tar archives of about a thousand utterances are read sequentially, copied
as they are, and split between machines and loader workers by shard.

The format is WebDataset's (plain POSIX tar; the files of one utterance share
a key: ``KEY.flac`` holds the original audio bytes, unconverted, and
``KEY.json`` the manifest entry), the format NeMo's tarred audio datasets also
use; any tar tool lists and extracts it. A folder of shards has an
``index.json`` with the shard names and the corpus size, so training knows
the length of an epoch before reading a byte of audio.

    asr shards exp/librispeech/manifests/train_960.jsonl exp/librispeech/shards/train_960
    asr train ... --train exp/librispeech/shards/train_960
"""

from __future__ import annotations

import json
import random
import tarfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import webdataset
from webdataset.tariterators import group_by_keys

from asr.data import ManifestError, Utterance
from asr.streaming import CorpusSize, Example

INDEX = "index.json"


def is_shards(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by :func:`write_shards`."""
    return (Path(path) / INDEX).is_file()


def write_shards(utterances: Iterable[Utterance], out_dir: str | Path, utterances_per_shard: int = 1000) -> CorpusSize:
    """Pack utterances, in the order given, into ``out_dir/shard-000000.tar``, ...; returns the corpus size.

    A file that cannot be read is reported in one line and left out. The index
    is written last, so a folder with an index is a complete set of shards.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INDEX).unlink(missing_ok=True)
    for stale in out_dir.glob("shard-*.tar"):  # of an earlier, larger packing
        stale.unlink()
    count, seconds = 0, 0.0
    written: list[str] = []
    # A whole-second modification time: WebDataset's default, a float, makes Python's tarfile add a
    # second (PAX) header to every member, and reading a shard then spends half its time parsing headers.
    # (WebDataset 1.0's ``format`` argument does not reach tarfile.)
    with webdataset.ShardWriter(
        str(out_dir / "shard-%06d.tar"), maxcount=utterances_per_shard, verbose=0, post=written.append, mtime=int(time.time())
    ) as writer:
        for utterance in utterances:
            path = Path(utterance.audio_filepath)
            try:
                audio = path.read_bytes()
            except OSError as error:
                print(f"warning: left out of the shards: {path}: {error.strerror or error}", flush=True)
                continue
            entry = {"audio_filepath": utterance.audio_filepath, "duration": utterance.duration, "text": utterance.text}
            # The key is the file's place in the corpus: ids need not be unique, and a dot would end the key.
            writer.write({"__key__": f"{count:09d}", path.suffix.lstrip(".").lower() or "audio": audio, "json": json.dumps(entry).encode()})
            count, seconds = count + 1, seconds + utterance.duration
    index = {"shards": [Path(name).name for name in written], "utterances": count, "seconds": round(seconds, 3)}
    temporary = out_dir / (INDEX + ".tmp")
    temporary.write_text(json.dumps(index, indent=1) + "\n")
    temporary.replace(out_dir / INDEX)
    return CorpusSize(count, seconds)


def read_index(folder: str | Path) -> tuple[list[str], CorpusSize]:
    """The shard paths of a folder written by :func:`write_shards`, and the corpus size."""
    try:
        index = json.loads((Path(folder) / INDEX).read_text(encoding="utf-8"))
        return [str(Path(folder) / name) for name in index["shards"]], CorpusSize(index["utterances"], index["seconds"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ManifestError(f"{folder}: not a folder of shards ({error})") from None


class ShardSource:
    """The utterances of a folder of shards, part by part (see :data:`asr.streaming.Source`).

    Every rank and worker shuffles the shard list alike (by ``seed`` and the
    epoch) and reads every ``parts``-th shard of it. A shard that cannot be
    read is reported in one line and skipped.
    """

    def __init__(self, folder: str | Path, shuffle: bool = True, seed: int = 0) -> None:
        self.shards, self.size = read_index(folder)
        self.shuffle, self.seed = shuffle, seed

    def __call__(self, epoch: int, part: int, parts: int) -> Iterator[Example]:
        shards = list(self.shards)
        if self.shuffle:
            random.Random(f"{self.seed}/{epoch}/shards").shuffle(shards)
        for sample in group_by_keys(_members(shards[part::parts]), handler=_skip_sample):
            try:
                yield _example(sample)
            except ValueError as error:
                print(f"warning: skipping {sample['__url__']}:{sample['__key__']}: {error}", flush=True)


def _example(sample: dict) -> Example:
    """An utterance and its audio bytes from a sample's ``.json`` and its one other file.

    Raises ValueError with the reason for a sample that a damaged or foreign
    shard left incomplete, so that it is reported and the rest are read.
    """
    audio = next((value for key, value in sample.items() if not key.startswith("__") and key != "json"), None)
    if audio is None:
        raise ValueError("no audio in the shard")
    if "json" not in sample:
        raise ValueError("no manifest entry in the shard")
    try:
        entry = json.loads(sample["json"])
        return Utterance(entry["audio_filepath"], float(entry["duration"]), entry["text"]), audio
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"bad manifest entry ({type(error).__name__}: {error})") from None


def _members(shards: list[str]) -> Iterator[dict]:
    """The files of each shard as WebDataset's ``{"fname", "data", "__url__"}``, and ``{}`` after each shard.

    WebDataset's own reader opens a shard as a stream of unknown compression
    (tarfile mode ``r|*``); a shard here is a plain file that can seek, and
    reading it as one (``r:``) takes a third less time a file. A shard that
    cannot be read is reported in one line, and what was read of it is kept.
    """
    for shard in shards:
        try:
            with tarfile.open(shard, "r:") as tar:
                for member in tar:
                    if member.isreg():
                        yield {"fname": member.name, "data": tar.extractfile(member).read(), "__url__": shard}
        except (OSError, tarfile.TarError) as error:
            print(f"warning: skipping the rest of {shard}: {getattr(error, 'strerror', None) or error}", flush=True)
        yield {}


def _skip_sample(error: Exception) -> bool:
    """WebDataset's error handler for grouping files into samples: report in one line and go on."""
    print(f"warning: skipping a sample: {error.args[0] if error.args else type(error).__name__}", flush=True)
    return True
