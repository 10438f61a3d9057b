"""Training data for corpora too large to hold in memory: streamed manifests and shards.

A manifest of millions of lines, or a corpus packed into WebDataset shards
(:mod:`asr.shards`), is read front to back and never held whole. Utterances
pass through a shuffle buffer (WebDataset's and Lhotse's way of shuffling a
stream), then are batched a chunk at a time: ``bucket_utterances`` of them are
sorted by length and cut into batches capped by padded frames, as
:class:`asr.data.BucketBatchSampler` does for a whole in-memory manifest, and
the chunk's batches come out in random order. Memory is bounded by the two
buffers, whatever the size of the corpus.

Audio is decoded only when its batch comes out (from the file a manifest line
names, or from the bytes a shard holds), in the loader's worker processes.
Each worker of each rank reads its own part of the stream: every ``parts``-th
manifest line, or every ``parts``-th shard. Parts differ in length, so ranks
end an epoch when the first of them runs out (:meth:`asr.train.Trainer.steps`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch.utils.data import IterableDataset, get_worker_info

from asr.data import (
    AudioSource,
    Batch,
    ManifestError,
    Utterance,
    bucket,
    collate,
    load_example,
    pair_up,
    parse_line,
    problem,
)
from asr.text import Tokenizer

Example = tuple[Utterance, AudioSource]
T = TypeVar("T")
# A source reads part ``part`` of ``parts`` of a corpus for epoch ``epoch``.
Source = Callable[[int, int, int], Iterator[Example]]


@dataclass
class StreamConfig:
    enabled: bool = False  # stream the training manifest instead of reading it whole (shards always are)
    # Memory: each loader worker holds up to shuffle_buffer + bucket_utterances
    # utterances' entries (and, from shards, their audio files' bytes).
    shuffle_buffer: int = 1000  # utterances; 0 keeps the order of the source
    bucket_utterances: int = 1000  # utterances sorted together into batches
    shuffle_shards: bool = True  # a new order of the shards every epoch


@dataclass(frozen=True)
class CorpusSize:
    """What the learning-rate schedule needs to know before the first epoch."""

    utterances: int
    seconds: float

    def batches(self, max_batch_frames: int, frame_seconds: float, concat_prob: float) -> int:
        """Batches an epoch, estimated from the mean length.

        A batch holds as many whole utterances of the mean length as fit under
        the frame cap (a joined pair counts as two), not the cap over the mean:
        with short utterances and a small cap (AN4's 2.7 s and 20 s), the
        part of a batch that no whole utterance fills is a sixth of it.
        """
        frames = self.seconds / max(1, self.utterances) / frame_seconds

        def per_batch(length: float) -> int:
            return max(1, int(max_batch_frames // max(length, 1.0)))

        singles, pairs = self.utterances * (1 - concat_prob), self.utterances * concat_prob
        return max(1, math.ceil(singles / per_batch(frames) + pairs / per_batch(2 * frames)))


class ManifestSource:
    """A manifest read one line at a time, part by part (see :data:`Source`): the audio is the file a line names."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.size = manifest_size(self.path)

    def __call__(self, epoch: int, part: int, parts: int) -> Iterator[Example]:
        """Lines ``part``, ``part + parts``, ... (the same every epoch: the shuffle buffer reorders them)."""
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if (number - 1) % parts == part and line.strip():
                    utterance = parse_line(self.path, number, line)
                    yield utterance, utterance.audio_filepath


def manifest_size(path: str | Path) -> CorpusSize:
    """Utterances and seconds of a manifest, in one streamed pass (a few seconds for a million lines)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    count, seconds = 0, 0.0
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    seconds += float(json.loads(line).get("duration", 0.0))
                except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as error:
                    raise ManifestError(f"{path}:{number}: not a manifest line ({error})") from None
                count += 1
    return CorpusSize(count, seconds)


def reservoir_sample(items: Iterable[T], size: int, rng: random.Random) -> list[T]:
    """``size`` of the items drawn uniformly without replacement, in one pass holding only ``size`` (Algorithm R)."""
    sample: list[T] = []
    for seen, item in enumerate(items):
        if len(sample) < size:
            sample.append(item)
        elif (slot := rng.randrange(seen + 1)) < size:
            sample[slot] = item
    return sample


def shuffled(examples: Iterable[Example], size: int, rng: random.Random) -> Iterator[Example]:
    """The examples in random order within a window of ``size``: each comes out in place of a random one held."""
    held: list[Example] = []
    for example in examples:
        if len(held) < size:
            held.append(example)
            continue
        slot = rng.randrange(size)
        yield held[slot]
        held[slot] = example
    rng.shuffle(held)
    yield from held


def chunks(examples: Iterable[Example], size: int) -> Iterator[list[Example]]:
    chunk: list[Example] = []
    for example in examples:
        chunk.append(example)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class StreamingDataset(IterableDataset):
    """Batches (:class:`asr.data.Batch`) from a source read front to back; give it to a DataLoader with ``batch_size=None``.

    Utterances the model cannot train on (:func:`asr.data.problem`) are
    reported in one line and left out as they come. The order is a function of
    ``seed``, the epoch and the part, so a run is reproducible and every
    source yields the same batches from the same utterances in the same order.
    """

    def __init__(
        self,
        source: Source,
        config: StreamConfig,
        tokenizer: Tokenizer,
        sample_rate: int,
        max_batch_frames: int,
        frame_seconds: float,
        output_frames: Callable[[float], int] | None = None,
        perturb: Callable[[torch.Tensor], torch.Tensor] | None = None,
        concat_prob: float = 0.0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.source, self.config = source, config
        self.tokenizer, self.sample_rate, self.perturb = tokenizer, sample_rate, perturb
        self.max_batch_frames, self.frame_seconds = max_batch_frames, frame_seconds
        self.output_frames, self.concat_prob = output_frames, concat_prob
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0  # read by worker processes when they start: the loader must not keep them between epochs

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Batch]:
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        part, parts = self.rank * workers + worker_id, self.world_size * workers
        rng = random.Random(f"{self.seed}/{self.epoch}/{part}")
        examples = self.usable(self.source(self.epoch, part, parts))
        if self.config.shuffle_buffer > 0:
            examples = shuffled(examples, self.config.shuffle_buffer, rng)
        count = 0
        for chunk in chunks(examples, self.config.bucket_utterances):
            for group in self.batches(chunk, rng):
                batch = collate([self.load(count + i, chunk, item) for i, item in enumerate(group)])
                count += len(group)
                if batch is not None:
                    yield batch

    def usable(self, examples: Iterable[Example]) -> Iterator[Example]:
        for utterance, source in examples:
            reason = problem(utterance, self.tokenizer, self.output_frames)
            if reason:
                print(f"warning: left out of training: {reason}", flush=True)
            else:
                yield utterance, source

    def batches(self, chunk: list[Example], rng: random.Random) -> list[list[int | tuple[int, int]]]:
        """A chunk's batches (indices into it, pairs for joined utterances), in random order."""
        items = pair_up(len(chunk), self.concat_prob, rng)
        frames = [sum(int(chunk[j][0].duration / self.frame_seconds) for j in (item if isinstance(item, tuple) else (item,))) for item in items]
        batches = [[items[i] for i in batch] for batch in bucket(frames, self.max_batch_frames, rng, jitter=0.1)]
        rng.shuffle(batches)
        return batches

    def load(self, index: int, chunk: list[Example], item: int | tuple[int, int]) -> tuple[int, torch.Tensor, list[int]] | None:
        example = load_example([chunk[j] for j in (item if isinstance(item, tuple) else (item,))], self.tokenizer, self.sample_rate, self.perturb)
        return None if example is None else (index, *example)
