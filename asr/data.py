"""Manifests, the training dataset, and duration-bucketed batches.

A manifest is JSON lines in NeMo's convention, one utterance a line:
``{"audio_filepath": ..., "duration": ..., "text": ...}``. Relative paths are
resolved against the manifest's folder.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from asr.audio import AudioError, audio_info, load_audio
from asr.text import Tokenizer, TokenizerError, normalize


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and line."""


@dataclass
class Utterance:
    audio_filepath: str
    duration: float
    text: str

    @property
    def utt_id(self) -> str:
        """The file name without its extension: the id used in results and scoring."""
        return Path(self.audio_filepath).stem


def read_manifest(path: str | Path) -> list[Utterance]:
    """All utterances of a manifest; a malformed line raises :class:`ManifestError`.

    Corpora too large to hold this list are streamed instead (:mod:`asr.streaming`).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    with path.open(encoding="utf-8") as lines:
        return [parse_line(path, number, line) for number, line in enumerate(lines, start=1) if line.strip()]


def parse_line(path: Path, number: int, line: str) -> Utterance:
    """Line ``number`` of manifest ``path``, its audio path resolved against the manifest's folder."""
    try:
        entry = json.loads(line)
        audio = Path(entry["audio_filepath"])
        return Utterance(
            audio_filepath=str(audio if audio.is_absolute() else path.parent / audio),
            duration=float(entry.get("duration", 0.0)),
            text=str(entry.get("text", "")),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ManifestError(f"{path}:{number}: not a manifest line ({error})") from None


_TEST_NAME = re.compile(r"(?<![a-z])(test|eval)(?![a-z])", re.IGNORECASE)  # test, an4test_clstk, test-clean, eval92


def refuse_test_data(manifest: str | Path, utterances: Iterable[Utterance]) -> None:
    """Raise :class:`ManifestError` if a manifest looks like test data: by its file
    name, or by the names of its audio files and of the three folders above each
    (where corpora name their sets: ``an4test_clstk/fcaw/x.sph``,
    ``test-clean/1089/134686/x.flac``; folders higher up are the user's own).

    Whatever is estimated or tuned on data (the language model, its weights) must
    never see the test set, or the reported test WER stops meaning anything.
    """
    named = [(Path(manifest), Path(manifest).name)]
    named += [(Path(u.audio_filepath), part) for u in utterances for part in Path(u.audio_filepath).parts[-4:]]
    for path, name in named:
        if _TEST_NAME.search(name):
            raise ManifestError(
                f"{manifest}: refusing test data ({path}); tune and build language models on training or dev data only"
            )


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> int:
    """Write utterances as JSON lines atomically; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with temporary.open("w", encoding="utf-8") as out:
        for utterance in utterances:
            out.write(json.dumps(asdict(utterance), ensure_ascii=False) + "\n")
            count += 1
    temporary.replace(path)
    return count


def make_utterance(audio_filepath: str | Path, transcript: str) -> Utterance:
    """Check that a file is readable, non-empty audio and that its transcript
    normalizes to something; raises :class:`AudioError` or :class:`TokenizerError`.
    """
    frames, rate = audio_info(audio_filepath)
    text = normalize(transcript)
    if not text:
        raise TokenizerError(f"{audio_filepath}: transcript {transcript!r} is empty after normalization")
    return Utterance(str(audio_filepath), round(frames / rate, 4), text)


def encodable(
    utterances: Iterable[Utterance], tokenizer: Tokenizer, output_frames: Callable[[float], int] | None = None
) -> tuple[list[Utterance], list[str]]:
    """Split utterances into those the model can train on and one-line reasons for the rest (see :func:`problem`)."""
    kept, problems = [], []
    for utterance in utterances:
        reason = problem(utterance, tokenizer, output_frames)
        if reason:
            problems.append(reason)
        else:
            kept.append(utterance)
    return kept, problems


def problem(utterance: Utterance, tokenizer: Tokenizer, output_frames: Callable[[float], int] | None = None) -> str | None:
    """Why the model cannot train on an utterance, in one line, or None if it can.

    An utterance is left out when its text has characters outside the
    vocabulary, or when ``output_frames(duration)`` says the model will emit fewer
    frames than CTC needs for its label (one per character, plus a blank
    between each pair of repeated characters).
    """
    try:
        labels = tokenizer.encode(utterance.text)
    except TokenizerError as error:
        return f"{utterance.audio_filepath}: {error}"
    needed = len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))
    if output_frames is not None and needed > output_frames(utterance.duration):
        return (
            f"{utterance.audio_filepath}: label of {needed} CTC steps is longer than its "
            f"{output_frames(utterance.duration)} output frames"
        )
    return None


AudioSource = str | bytes  # where an utterance's audio is: a file, or the file's bytes (from a shard)


def load_example(
    parts: list[tuple[Utterance, AudioSource]],
    tokenizer: Tokenizer | None,
    sample_rate: int,
    perturb: Callable[[torch.Tensor], torch.Tensor] | None,
) -> tuple[torch.Tensor, list[int]] | None:
    """The waveform and label ids of one utterance, or of several joined (texts joined by a space).

    Each part is augmented on its own; an unreadable file is reported in one
    line and the example is None (skipped by :func:`collate`).
    """
    waveforms, texts = [], []
    for utterance, source in parts:
        try:
            waveform = load_audio(source, sample_rate, name=utterance.audio_filepath)
        except AudioError as error:
            print(f"warning: skipping {error}", flush=True)
            return None
        waveforms.append(perturb(waveform) if perturb is not None else waveform)
        texts.append(utterance.text)
    labels = tokenizer.encode(" ".join(texts)) if tokenizer else []
    return torch.cat(waveforms), labels


class SpeechDataset(Dataset):
    """Waveforms and label ids; an unreadable file yields ``None`` and is skipped by :func:`collate`."""

    def __init__(
        self,
        utterances: list[Utterance],
        tokenizer: Tokenizer | None,
        sample_rate: int,
        perturb: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.utterances = utterances
        self.tokenizer = tokenizer
        self.sample_rate = sample_rate
        self.perturb = perturb  # training-time waveform augmentation

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[int, torch.Tensor, list[int]] | None:
        """One utterance, or for a pair of indices (see :class:`BucketBatchSampler`) the two joined."""
        indices = key if isinstance(key, tuple) else (key,)
        example = load_example(
            [(self.utterances[i], self.utterances[i].audio_filepath) for i in indices], self.tokenizer, self.sample_rate, self.perturb
        )
        return None if example is None else (indices[0], *example)


@dataclass
class Batch:
    indices: list[int]
    waveforms: torch.Tensor  # (batch, samples), zero-padded
    lengths: torch.Tensor  # (batch,) samples
    targets: torch.Tensor  # (sum of label lengths,) concatenated, as CTC wants
    target_lengths: torch.Tensor  # (batch,)

    def pin_memory(self) -> Batch:
        """Page-locked copies (the loader's ``pin_memory``), which go to a GPU without waiting for it."""
        self.waveforms = self.waveforms.pin_memory()
        self.lengths = self.lengths.pin_memory()
        self.targets = self.targets.pin_memory()
        return self


def collate(items: list[tuple[int, torch.Tensor, list[int]] | None]) -> Batch | None:
    """Pad waveforms into one tensor; ``None`` when every file of the batch failed."""
    items = [item for item in items if item is not None]
    if not items:
        return None
    lengths = torch.tensor([waveform.numel() for _, waveform, _ in items])
    waveforms = torch.zeros(len(items), int(lengths.max()))
    for row, (_, waveform, _) in enumerate(items):
        waveforms[row, : waveform.numel()] = waveform
    return Batch(
        indices=[index for index, _, _ in items],
        waveforms=waveforms,
        lengths=lengths,
        targets=torch.tensor([label for _, _, labels in items for label in labels], dtype=torch.long),
        target_lengths=torch.tensor([len(labels) for _, _, labels in items]),
    )


class BucketBatchSampler(Sampler[list[int | tuple[int, int]]]):
    """Batches of utterances of similar length, capped by padded frames.

    A batch's cost is its longest utterance times its size (what padding makes
    the model compute), so capping that, rather than the count, keeps long
    utterances from exhausting memory while short ones fill large batches.
    Lengths are jittered by up to ``jitter`` before sorting so that batches
    differ between epochs; the order is a function of ``seed`` and the epoch.
    For the first ``sorted_epochs`` epochs batches come shortest first
    (SortaGrad, Amodei et al. 2016): short utterances are easy to align, which
    shortens CTC's initial all-blank plateau.

    With ``concat_prob``, each utterance is paired with a random other one
    that often (an epoch's draw), and the batch holds the pair ``(i, j)``, which
    :class:`SpeechDataset` joins; the pair's length counts against the cap.

    Under torch.distributed every rank forms the same batches (same seed and
    epoch) and takes every ``world_size``-th one from ``rank`` on. An epoch
    keeps a multiple of ``world_size * batches_per_step`` batches, so that every
    rank makes the same number of whole optimizer steps; the few left over are
    another epoch's, as the shuffle changes.
    """

    def __init__(
        self,
        frames: list[int],
        max_batch_frames: int,
        shuffle: bool = True,
        seed: int = 0,
        jitter: float = 0.1,
        sorted_epochs: int = 0,
        concat_prob: float = 0.0,
        rank: int = 0,
        world_size: int = 1,
        batches_per_step: int = 1,
    ) -> None:
        self.frames = frames
        self.concat_prob = concat_prob
        self.rank, self.world_size, self.batches_per_step = rank, world_size, batches_per_step
        self.max_batch_frames = max_batch_frames
        self.shuffle = shuffle
        self.seed = seed
        self.jitter = jitter
        self.sorted_epochs = sorted_epochs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int | tuple[int, int]]]:
        rng = random.Random(self.seed * 100003 + self.epoch)
        items = pair_up(len(self.frames), self.concat_prob, rng)
        frames = [sum(self.frames[j] for j in item) if isinstance(item, tuple) else self.frames[item] for item in items]
        batches = [[items[i] for i in batch] for batch in bucket(frames, self.max_batch_frames, rng, self.jitter if self.shuffle else 0.0)]
        if self.shuffle and self.epoch >= self.sorted_epochs:
            rng.shuffle(batches)
        group = self.world_size * self.batches_per_step
        whole = len(batches) // group * group
        # Fewer batches than one step needs (a tiny set): repeat them to make one.
        batches = batches[:whole] if whole else (batches * group)[:group]
        return batches[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int | tuple[int, int]]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())


def pair_up(count: int, concat_prob: float, rng: random.Random) -> list[int | tuple[int, int]]:
    """Indices ``0..count-1``, each replaced with probability ``concat_prob`` by a pair ``(i, j)``, ``j`` any other."""
    items: list[int | tuple[int, int]] = list(range(count))
    if concat_prob > 0 and count > 1:
        for i in range(count):
            if rng.random() < concat_prob:
                items[i] = (i, (i + rng.randrange(1, count)) % count)
    return items


def bucket(frames: list[int], max_batch_frames: int, rng: random.Random, jitter: float) -> list[list[int]]:
    """Indices into ``frames`` cut into batches of similar length, shortest first.

    Lengths are sorted after a random change of up to ``jitter`` (so batches
    differ between draws), and a batch is closed when its longest item times
    its size, what padding makes the model compute, would pass the cap.
    """
    keys = [n * (1 + rng.uniform(-jitter, jitter)) if jitter else n for n in frames]
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in sorted(range(len(frames)), key=keys.__getitem__):
        longest_if_added = max(longest, frames[index])
        if current and longest_if_added * (len(current) + 1) > max_batch_frames:
            batches.append(current)
            current, longest_if_added = [], frames[index]
        current.append(index)
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches
