"""Training-time augmentation: speed perturbation and silence padding of waveforms, SpecAugment of features.

Neither runs at inference; both are configured by :class:`AugmentConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torchaudio
from torch import nn


@dataclass
class AugmentConfig:
    # Speed perturbation (Ko et al., 2015): each utterance is resampled by one of
    # these factors, chosen at random every time it is read.
    speed_factors: list[float] = field(default_factory=lambda: [1.0])
    # SpecAugment (Park et al., 2019) masks, from epoch ``specaugment_from_epoch`` on.
    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width: int = 40
    time_ratio: float = 0.2  # a time mask covers at most this share of the batch's frames
    specaugment_from_epoch: int = 0
    # Concatenation: each utterance is joined to a random other one (texts joined
    # by a space) with this probability, drawn again every epoch. Without it a
    # model of short isolated utterances learns where they start and end, and
    # then drops or invents words when speech starts mid-window or a recording
    # has longer pauses than the training set's.
    concat_prob: float = 0.0
    # Silence extension (after Kaldi's extend-wav-with-silence): with this
    # probability an utterance gets up to ``pad_seconds`` of its own background
    # noise before it and, drawn separately, after it. Corpora of tightly cut
    # utterances otherwise teach the model that speech starts and ends within a
    # fraction of a second of the edges, and a second of room tone in a real
    # recording then costs whole words.
    pad_prob: float = 0.0
    pad_seconds: float = 1.0
    # The padding is made quieter than the background by a gain drawn uniformly
    # between 0 and -pad_attenuation_db decibels, so that it spans a room's tone
    # down to digital silence (with ``features.quantization_floor``, anything
    # quieter than 16-bit quantization noise is that noise).
    pad_attenuation_db: float = 0.0


class SpeedPerturbation:
    """Resample a waveform as if played one of ``factors`` times faster (torchaudio's transform)."""

    def __init__(self, sample_rate: int, factors: list[float]) -> None:
        self.transform = torchaudio.transforms.SpeedPerturbation(sample_rate, factors)

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        perturbed, _ = self.transform(waveform)
        return perturbed


class SilencePadding:
    """Extend a waveform, with probability ``prob``, by up to ``max_seconds`` of its own background noise on each side.

    The noise is the quieter of the waveform's first and last ``EDGE_SECONDS``,
    tiled alternately forwards and backwards: the reflections keep the signal
    continuous at every seam, so the padding has the room's spectrum and no
    clicks that a model could learn to look for. It is attenuated by up to
    ``attenuation_db`` (uniform in decibels).
    """

    EDGE_SECONDS = 0.1

    def __init__(self, sample_rate: int, prob: float, max_seconds: float, attenuation_db: float = 0.0) -> None:
        self.sample_rate, self.prob, self.max_seconds = sample_rate, prob, max_seconds
        self.attenuation_db = attenuation_db

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.prob:
            return waveform
        before, after = (torch.rand(2) * self.max_seconds * self.sample_rate).long().tolist()
        gain = 10.0 ** (-float(torch.rand(())) * self.attenuation_db / 20)
        noise = background_noise(waveform, int(self.EDGE_SECONDS * self.sample_rate)) * gain
        return torch.cat([reflect_tile(noise, before), waveform, reflect_tile(noise, after)])


def background_noise(waveform: torch.Tensor, samples: int) -> torch.Tensor:
    """The lower-energy of the waveform's first and last ``samples``."""
    head, tail = waveform[:samples], waveform[-samples:]
    return head if head.square().mean() <= tail.square().mean() else tail


def reflect_tile(segment: torch.Tensor, length: int) -> torch.Tensor:
    """``length`` samples of ``segment``, its reversal, the segment, ... (continuous at each seam)."""
    repeats = length // (2 * segment.numel()) + 1
    return torch.cat([segment, segment.flip(0)] * repeats)[:length]


class WaveformAugmentation:
    """Speed perturbation then silence padding, each where configured (a class, so loader workers can pickle it)."""

    def __init__(self, config: AugmentConfig, sample_rate: int) -> None:
        self.steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
        if list(config.speed_factors) != [1.0]:
            self.steps.append(SpeedPerturbation(sample_rate, config.speed_factors))
        if config.pad_prob > 0:
            self.steps.append(SilencePadding(sample_rate, config.pad_prob, config.pad_seconds, config.pad_attenuation_db))

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            waveform = step(waveform)
        return waveform


class SpecAugment(nn.Module):
    """Frequency and time masking with torchaudio's transforms, each utterance masked independently."""

    def __init__(self, config: AugmentConfig) -> None:
        super().__init__()
        self.config = config
        self.freq_mask = torchaudio.transforms.FrequencyMasking(config.freq_width, iid_masks=True)
        self.time_mask = torchaudio.transforms.TimeMasking(config.time_width, iid_masks=True, p=config.time_ratio)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Mask ``(batch, frames, n_mels)`` features (zero is the normalized mean)."""
        spec = features.transpose(1, 2).unsqueeze(1)  # (batch, 1, n_mels, frames)
        for _ in range(self.config.freq_masks):
            spec = self.freq_mask(spec)
        for _ in range(self.config.time_masks):
            spec = self.time_mask(spec)
        return spec.squeeze(1).transpose(1, 2)
