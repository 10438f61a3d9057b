"""Transcription as a library: ``asr.load(path).transcribe(audio)``.

Every recording, seconds or hours long, goes the same way:

1. It is read in overlapping windows (:class:`asr.audio.Recording`), so
   memory does not grow with its length. Windows from consecutive recordings
   share batches, capped by padded duration.
2. The model turns each window into CTC log-probabilities. Of each window only
   the middle is kept: the frames near its edges, where the BiLSTM lacked
   context, come from the neighbouring window instead. The kept frames tile
   the recording exactly, so no frame (and no word) is lost or counted twice
   at a seam; the decoder never sees the seams at all.
3. The joined frames are decoded (greedy, or beam search with the LM) in
   stretches of at most ``segment_seconds``, each cut in the middle of the
   longest pause, where no word can straddle the cut.
4. Words get times and confidences by forced alignment (:mod:`asr.alignment`).

The ``asr transcribe`` and ``asr serve`` commands are thin layers over
:class:`Transcriber`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import torch

from asr.alignment import Word, align_words
from asr.audio import AudioError, Recording
from asr.checkpoint import ASRModel, load_model
from asr.decoding import BeamSearchDecoder, greedy_decode, tuned_options
from asr.train import resolve_device
from asr.transcribe import emissions

POOL_BATCHES = 4  # batches' worth of windows read ahead and sorted by length
AudioInput = Union[str, Path, np.ndarray, torch.Tensor, BinaryIO]


@dataclass
class TranscribeOptions:
    """How recordings are cut up. Times must be multiples of the model's frame (40 ms for AN4's)."""

    window_seconds: float = 20.0  # audio the model sees at once
    overlap_seconds: float = 4.0  # shared by neighbouring windows: half of it is context on each side of a seam
    segment_seconds: float = 30.0  # longest stretch decoded at once (and so the LM's longest context)
    batch_seconds: float = 60.0  # padded audio per model batch (on a CPU, larger batches are no faster)


@dataclass
class Transcript:
    """One recording's text, its words with times and confidences, or why it could not be read."""

    source: str
    text: str = ""
    words: list[Word] = field(default_factory=list)
    duration: float = 0.0  # seconds
    error: str | None = None  # set when the recording could not be read; text and words are then empty

    def to_dict(self) -> dict:
        return asdict(self)


class Transcriber:
    """A model (and optionally a language model) ready to transcribe; see :func:`load`."""

    def __init__(
        self,
        asr_model: ASRModel,
        decoder: BeamSearchDecoder | None = None,
        options: TranscribeOptions | None = None,
    ) -> None:
        self.asr_model = asr_model.eval()
        self.decoder = decoder
        self.options = options or TranscribeOptions()
        features = asr_model.features.config
        self.sample_rate = features.sample_rate
        self.frame_seconds = features.hop_ms / 1000 * asr_model.model.config.subsampling
        self._margin = self._frames(self.options.overlap_seconds / 2, "overlap_seconds / 2")
        self._step = self._frames(self.options.window_seconds - self.options.overlap_seconds, "the window's step")
        self._segment = max(1, round(self.options.segment_seconds / self.frame_seconds))
        if self._step <= 0:
            raise ValueError("window_seconds must be longer than overlap_seconds")

    def transcribe(
        self, audio: AudioInput | list[AudioInput], sample_rate: int | None = None
    ) -> Transcript | list[Transcript]:
        """Transcribe a file path, an open binary file, or an array of samples (with ``sample_rate``).

        Arrays are ``(samples,)`` or ``(samples, channels)``, at any rate.
        Given a list, returns a list in the same order, where a recording that
        cannot be read has its ``error`` set and the others are unaffected;
        given one recording that cannot be read, raises :class:`AudioError`.
        """
        if isinstance(audio, list):
            return list(self.stream(audio, sample_rate))
        (result,) = self.stream([audio], sample_rate)
        if result.error is not None:
            raise AudioError(result.source, result.error)
        return result

    def stream(self, inputs: Iterable[AudioInput], sample_rate: int | None = None) -> Iterator[Transcript]:
        """Transcripts in input order, each yielded as soon as it is complete (inputs are read lazily)."""
        jobs: list[_Job] = []
        pool: list[_Window] = []  # windows read ahead, so that batches can be formed from similar lengths
        pooled = 0  # their samples
        budget = self.options.batch_seconds * self.sample_rate
        for window in self._windows(inputs, sample_rate, jobs):
            pool.append(window)
            pooled += window.waveform.numel()
            if pooled >= POOL_BATCHES * budget:
                self._run_pool(pool, budget)
                pool, pooled = [], 0
            while jobs and jobs[0].done:
                yield jobs.pop(0).transcript
        self._run_pool(pool, budget)
        for job in jobs:
            yield job.transcript

    def _windows(self, inputs: Iterable[AudioInput], sample_rate: int | None, jobs: list[_Job]) -> Iterator[_Window]:
        """Every window of every input, opening each input only when it is reached."""
        window, step = self.options.window_seconds, self.options.window_seconds - self.options.overlap_seconds
        for item in inputs:
            job = _Job(Transcript(_name(item)), self)
            jobs.append(job)
            try:
                with Recording(item, job.transcript.source, sample_rate) as recording:
                    job.transcript.duration = recording.duration
                    for index, (waveform, last) in enumerate(recording.windows(self.sample_rate, window, step)):
                        yield _Window(job, waveform, index == 0, last)
            except AudioError as error:
                job.fail(error.reason)

    def _run_pool(self, pool: list[_Window], budget: float) -> None:
        """Run windows read ahead in batches of similar lengths (padding under ``budget`` samples);
        then hand each window's frames to its recording, in reading order.
        """
        pool = [w for w in pool if not w.job.done]  # a recording that failed part-way
        kept: dict[int, torch.Tensor] = {}
        batch: list[int] = []
        for index in sorted(range(len(pool)), key=lambda i: pool[i].waveform.numel()):
            if batch and pool[index].waveform.numel() * (len(batch) + 1) > budget:
                kept.update(zip(batch, self._run([pool[i] for i in batch])))
                batch = []
            batch.append(index)
        if batch:
            kept.update(zip(batch, self._run([pool[i] for i in batch])))
        for index, window in enumerate(pool):
            window.job.add(kept[index], window.last)

    @torch.inference_mode()
    def _run(self, batch: list[_Window]) -> list[torch.Tensor]:
        """The model over a batch of windows: the frames each one keeps, re-indexed from its first kept frame.

        Each window but the first of a recording drops ``margin`` frames at its start,
        and each but the last keeps ``step`` frames after those: the kept frames tile the recording.
        """
        lengths = torch.tensor([w.waveform.numel() for w in batch])
        waveforms = torch.zeros(len(batch), int(lengths.max()))
        for row, w in enumerate(batch):
            waveforms[row, : w.waveform.numel()] = w.waveform
        log_probs, frames = emissions(self.asr_model, waveforms, lengths)
        log_probs, frames = log_probs.float().cpu(), frames.cpu()
        kept = []
        for w, row, n in zip(batch, log_probs, frames.tolist()):
            first = 0 if w.first else self._margin
            end = n if w.last else min(n, self._step + self._margin)
            kept.append(row[first:end])
        return kept

    def _decode(self, log_probs: torch.Tensor, offset_frame: int) -> list[Word]:
        """Words of a stretch of ``(frames, vocab)`` log-probabilities starting at ``offset_frame``."""
        lengths = torch.tensor([log_probs.size(0)])
        if self.decoder is not None:
            text = self.decoder(log_probs[None], lengths)[0]
        else:
            text = self.asr_model.tokenizer.decode(greedy_decode(log_probs[None], lengths)[0])
            text = " ".join(text.split())
        return align_words(log_probs, text, self.asr_model.tokenizer, self.frame_seconds, offset_frame * self.frame_seconds)

    def _frames(self, seconds: float, what: str) -> int:
        frames = seconds / self.frame_seconds
        if abs(frames - round(frames)) > 1e-6:
            raise ValueError(f"{what} ({seconds:g} s) is not a multiple of the model's {self.frame_seconds:g} s frames")
        return round(frames)


@dataclass
class _Window:
    job: _Job
    waveform: torch.Tensor
    first: bool
    last: bool


class _Job:
    """One recording in progress: joins its windows' kept frames and decodes them a stretch at a time."""

    def __init__(self, transcript: Transcript, transcriber: Transcriber) -> None:
        self.transcript = transcript
        self.transcriber = transcriber
        self.done = False
        self.pending: list[torch.Tensor] = []  # kept frames not decoded yet
        self.pending_start = 0  # recording frame index of the first pending frame

    def add(self, log_probs: torch.Tensor, last: bool) -> None:
        """Append a window's kept frames (the next ones of the recording); decode what is ready."""
        if self.done:
            return
        self.pending.append(log_probs)
        joined = torch.cat(self.pending)
        segment = self.transcriber._segment
        while joined.size(0) > segment:
            cut = _longest_pause_middle(joined[:segment], low=segment // 3)
            self._decode(joined[:cut])
            joined = joined[cut:]
        self.pending = [joined]
        if last:
            self._decode(joined)
            self.pending = []
            self.done = True

    def _decode(self, log_probs: torch.Tensor) -> None:
        if log_probs.size(0):
            self.transcript.words += self.transcriber._decode(log_probs, self.pending_start)
            self.transcript.text = " ".join(w.word for w in self.transcript.words)
        self.pending_start += log_probs.size(0)

    def fail(self, reason: str) -> None:
        self.transcript.error = reason
        self.transcript.text, self.transcript.words = "", []
        self.pending = []
        self.done = True


def _longest_pause_middle(log_probs: torch.Tensor, low: int) -> int:
    """The middle frame of the longest run of blank frames at or after ``low``: a cut no word can straddle.

    Falls back to the most blank-like frame when there is no blank frame at all.
    """
    best = log_probs.argmax(dim=-1)
    blank = (best == 0).tolist()
    run_start, best_len, best_cut = None, 0, None
    for i in range(low, len(blank) + 1):
        if i < len(blank) and blank[i]:
            run_start = i if run_start is None else run_start
            continue
        if run_start is not None and i - run_start > best_len:
            best_len, best_cut = i - run_start, (run_start + i) // 2
        run_start = None
    if best_cut is None:
        best_cut = low + int(log_probs[low:, 0].argmax())
    return max(best_cut, 1)


def _name(item: AudioInput) -> str:
    if isinstance(item, (str, Path)):
        return str(item)
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return "<array>"
    return str(getattr(item, "name", "<file>"))


def load(
    path: str | Path,
    device: str = "auto",
    lm: str | Path | None = None,
    options: TranscribeOptions | None = None,
    **beam_options: float | int | bool | None,
) -> Transcriber:
    """Load a model file for transcription; with ``lm`` (an ARPA file), decode by beam search with it.

    Beam-search settings are those tuned into the model file (``asr tune``),
    then any given here by name (``lm_weight=0.8``, ``beam_size=100``, ... as
    in :class:`asr.decoding.BeamSearchOptions`).

    >>> model = asr.load("exp/an4/model.pt")
    >>> result = model.transcribe("recording.wav")
    >>> result.text, result.words[0].start
    """
    asr_model = load_model(path, resolve_device(device))
    decoder = None
    if lm is not None:
        decoder = BeamSearchDecoder(asr_model.tokenizer.vocabulary, lm, tuned_options(asr_model.decoding, **beam_options))
    return Transcriber(asr_model, decoder, options)
