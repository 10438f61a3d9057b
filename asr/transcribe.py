"""Running a model over audio: batches of waveforms in, text out.

Dev-set evaluation during training, the decode stage of the recipes and the
``asr transcribe`` command all go through :func:`emissions` and :func:`decode`, so they cannot
disagree about features, padding or decoding.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from asr.audio import AudioError, load_audio
from asr.augment import SpeedPerturbation
from asr.checkpoint import ASRModel
from asr.data import Batch, BucketBatchSampler, SpeechDataset, Utterance, collate
from asr.decoding import BeamSearchDecoder, greedy_decode
from asr.voting import vote


@torch.inference_mode()
def emissions(asr_model: ASRModel, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC log-probabilities ``(batch, frames, vocab)`` and frame counts of a padded batch of waveforms."""
    device = asr_model.features.mean.device
    features, frames = asr_model.features(waveforms.to(device), lengths.to(device))
    return asr_model.model(features, frames)


def recognize(
    asr_model: ASRModel, waveforms: torch.Tensor, lengths: torch.Tensor, decoder: BeamSearchDecoder | None = None
) -> list[str]:
    """Transcripts of a padded batch ``(batch, samples)`` with sample ``lengths``."""
    return decode(asr_model, *emissions(asr_model, waveforms, lengths), decoder)


def decode(
    asr_model: ASRModel, log_probs: torch.Tensor, lengths: torch.Tensor, decoder: BeamSearchDecoder | None = None
) -> list[str]:
    """Text from log-probabilities: greedy best path, or ``decoder``'s beam search when given."""
    if decoder is not None:
        return decoder(log_probs, lengths)
    return [asr_model.tokenizer.decode(ids) for ids in greedy_decode(log_probs, lengths)]


@dataclass
class DecodeResult:
    hypotheses: dict[str, str]  # by utterance id
    audio_seconds: float
    wall_seconds: float

    @property
    def real_time_factor(self) -> float:
        """Wall time over audio time: below 1 is faster than real time."""
        return self.wall_seconds / max(self.audio_seconds, 1e-9)


def model_outputs(
    asr_model: ASRModel,
    utterances: list[Utterance],
    max_batch_frames: int = 40000,
    num_workers: int = 0,
    speed: float = 1.0,
) -> Iterator[tuple[Batch, torch.Tensor, torch.Tensor]]:
    """Batches of readable utterances (by duration) with their log-probabilities and frame counts.

    ``speed`` other than 1 plays each utterance that many times faster first
    (torchaudio's resampling, as in training's speed perturbation).
    Unreadable files are left out; the caller sees which by the missing indices.
    """
    asr_model.eval()
    rate = asr_model.features.config.sample_rate
    hop = asr_model.features.config.hop_ms / 1000
    perturb = None if speed == 1.0 else SpeedPerturbation(rate, [speed])
    sampler = BucketBatchSampler([int(u.duration / hop) for u in utterances], max_batch_frames, shuffle=False)
    loader = DataLoader(
        SpeechDataset(utterances, None, rate, perturb), batch_sampler=sampler, collate_fn=collate, num_workers=num_workers
    )
    for batch in loader:
        if batch is not None:
            yield (batch, *emissions(asr_model, batch.waveforms, batch.lengths))


def decode_utterances(
    asr_model: ASRModel,
    utterances: list[Utterance],
    max_batch_frames: int = 40000,
    num_workers: int = 0,
    decoder: BeamSearchDecoder | None = None,
    speeds: Sequence[float] = (1.0,),
) -> DecodeResult:
    """Decode every utterance (greedy, or with ``decoder``); unreadable files are reported and skipped.

    With several ``speeds``, each utterance is decoded at each speed and the
    decodings are combined word by word by :func:`asr.voting.vote` (the first
    speed's breaks ties); the wall time counts every pass.
    """
    start = time.perf_counter()
    was_training = asr_model.model.training
    rate = asr_model.features.config.sample_rate
    decodings: list[dict[str, str]] = []  # one per speed: text by utterance id
    audio_seconds = 0.0
    for speed in speeds:
        texts: dict[str, str] = {}
        for batch, log_probs, lengths in model_outputs(asr_model, utterances, max_batch_frames, num_workers, speed):
            for index, text in zip(batch.indices, decode(asr_model, log_probs, lengths, decoder)):
                texts[utterances[index].utt_id] = text
            if not decodings:
                audio_seconds += batch.lengths.sum().item() / rate
        decodings.append(texts)
        utterances = [u for u in utterances if u.utt_id in texts]  # an unreadable file is reported once
    hypotheses = {utt_id: vote([texts[utt_id] for texts in decodings]) for utt_id in decodings[0]}
    asr_model.model.train(was_training)
    return DecodeResult(hypotheses, audio_seconds, time.perf_counter() - start)


def transcribe_files(
    asr_model: ASRModel, paths: list[str], batch_size: int = 16, decoder: BeamSearchDecoder | None = None
) -> Iterator[tuple[str, str | AudioError]]:
    """Yield ``(path, transcript)``, or ``(path, AudioError)`` for a file that cannot be read, in input order."""
    rate = asr_model.features.config.sample_rate
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        loaded: list[tuple[int, torch.Tensor]] = []
        results: list[str | AudioError] = [""] * len(chunk)
        for i, path in enumerate(chunk):
            try:
                loaded.append((i, load_audio(path, rate)))
            except AudioError as error:
                results[i] = error
        if loaded:
            batch = collate([(i, waveform, []) for i, waveform in loaded])
            assert isinstance(batch, Batch)
            for i, text in zip(batch.indices, recognize(asr_model, batch.waveforms, batch.lengths, decoder)):
                results[i] = text
        yield from zip(chunk, results)

