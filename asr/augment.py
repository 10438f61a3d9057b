"""Training-time augmentation: of waveforms (speed, room, noise, telephone band, silence padding, level), and SpecAugment of features.

None runs at inference; all are configured by :class:`AugmentConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torchaudio
from torch import nn

from asr.audio import resample

TELEPHONE_RATE = 8000  # narrowband telephony: nothing above 4 kHz survives


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
    # Recording conditions a clean read-speech corpus lacks, each applied to an
    # utterance with its probability (0: off). Reverberation: a synthetic room
    # response whose reverberation time is drawn from ``reverb_rt60`` seconds.
    reverb_prob: float = 0.0
    reverb_rt60: list[float] = field(default_factory=lambda: [0.2, 0.8])
    # Additive noise from white to brown (power falling as 1/f^b, b drawn from
    # 0 to 2) at a signal-to-noise ratio drawn from ``noise_snr_db``.
    noise_prob: float = 0.0
    noise_snr_db: list[float] = field(default_factory=lambda: [5.0, 30.0])
    # The telephone band: down to 8 kHz and back, so nothing above 4 kHz is left.
    telephone_prob: float = 0.0
    # Recording level: a gain drawn from ``level_db``, then clipping to full
    # scale and rounding to 16 bits, as a recording too quiet or too loud is stored.
    level_prob: float = 0.0
    level_db: list[float] = field(default_factory=lambda: [-30.0, 10.0])
    # The conditions and the level start at this epoch: heard from the first
    # step they hold CTC on its all-blank plateau (dev WER 97.8% after 9 epochs
    # with a fifth to a quarter of utterances changed by each, where row Q's
    # was 32% after 8), as SpecAugment does (specaugment_from_epoch).
    conditions_from_epoch: int = 0

    def __post_init__(self) -> None:
        for name in ("reverb_rt60", "noise_snr_db", "level_db"):
            values = getattr(self, name)
            if len(values) != 2 or values[0] > values[1]:
                raise ValueError(f"augment.{name} must be [low, high], not {values}")
        if self.reverb_rt60[0] <= 0:
            raise ValueError(f"augment.reverb_rt60 must be positive seconds, not {self.reverb_rt60}")


def uniform(low: float, high: float) -> float:
    """One draw from torch's generator (seeded per loader worker), uniform between ``low`` and ``high``."""
    return low + (high - low) * float(torch.rand(()))


def happens(prob: float) -> bool:
    """True with probability ``prob``, from the same generator (no draw when ``prob`` is 0)."""
    return prob > 0 and float(torch.rand(())) < prob


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
        if not happens(self.prob):
            return waveform
        before, after = (torch.rand(2) * self.max_seconds * self.sample_rate).long().tolist()
        gain = 10.0 ** (-uniform(0.0, self.attenuation_db) / 20)
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


def room_response(rt60: float, sample_rate: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A synthetic room impulse response of unit energy: the direct path, then
    Gaussian noise decaying by 60 dB in ``rt60`` seconds (Schroeder's statistical
    model of a diffuse reverberant tail), starting 20 dB below the direct path."""
    samples = max(int(rt60 * sample_rate), 2)
    decay = torch.exp(-3 * math.log(10) * torch.arange(samples) / samples)  # 60 dB: a factor 1000 in amplitude
    response = torch.randn(samples, generator=generator) * decay * 0.1
    response[0] = 1.0
    return response / response.norm()


def reverberant(waveform: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """The waveform convolved with a room response, cut to its own length and rescaled to its own peak."""
    wet = torchaudio.functional.fftconvolve(waveform, response)[: waveform.numel()]
    return wet * (waveform.abs().max() / wet.abs().max().clamp(min=1e-9))


def coloured_noise(samples: int, exponent: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise of unit power whose power spectrum falls as 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spectrum = torch.fft.rfft(torch.randn(samples, generator=generator))
    frequencies = torch.arange(spectrum.numel(), dtype=torch.float32).clamp(min=1.0)
    noise = torch.fft.irfft(spectrum * frequencies.pow(-exponent / 2), n=samples)
    return noise / noise.square().mean().sqrt().clamp(min=1e-12)


def with_noise(waveform: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``noise`` (unit power) added ``snr_db`` below the waveform's mean power."""
    return waveform + noise * (waveform.square().mean() / 10 ** (snr_db / 10)).sqrt()


def telephone_band(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The waveform down to 8 kHz and back to ``sample_rate``: what a narrowband telephone call keeps."""
    return resample(resample(waveform, sample_rate, TELEPHONE_RATE), TELEPHONE_RATE, sample_rate)[: waveform.numel()]


def stored_16_bit(waveform: torch.Tensor) -> torch.Tensor:
    """Clipped to full scale and rounded to the 16-bit grid, as a recording is stored."""
    return torch.round(waveform.clamp(-1.0, 1.0) * 32768).clamp(-32768, 32767) / 32768


class RecordingConditions:
    """Reverberation, then noise, then the telephone band, each with its probability:
    the order a recording meets them (the room, the noise in it, the channel)."""

    def __init__(self, config: AugmentConfig, sample_rate: int) -> None:
        self.config, self.sample_rate = config, sample_rate

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        config = self.config
        if happens(config.reverb_prob):
            waveform = reverberant(waveform, room_response(uniform(*config.reverb_rt60), self.sample_rate))
        if happens(config.noise_prob):
            noise = coloured_noise(waveform.numel(), uniform(0.0, 2.0))
            waveform = with_noise(waveform, noise, uniform(*config.noise_snr_db))
        if happens(config.telephone_prob) and self.sample_rate > TELEPHONE_RATE:
            waveform = telephone_band(waveform, self.sample_rate)
        return waveform


class RecordingLevel:
    """With probability ``prob``, a gain drawn uniformly in decibels, then storage at 16 bits (clipping, rounding)."""

    def __init__(self, prob: float, level_db: list[float]) -> None:
        self.prob, self.level_db = prob, level_db

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        if not happens(self.prob):
            return waveform
        return stored_16_bit(waveform * 10 ** (uniform(*self.level_db) / 20))


class WaveformAugmentation:
    """Each configured step in turn: speed perturbation, recording conditions, silence
    padding, recording level (a class, so loader workers can pickle it). Padding
    follows the conditions so that it repeats the background they left; the
    level comes last, as storing the recording does. The conditions and the
    level wait for epoch ``conditions_from_epoch`` (see :meth:`set_epoch`)."""

    def __init__(self, config: AugmentConfig, sample_rate: int) -> None:
        self.steps: list[tuple[int, Callable[[torch.Tensor], torch.Tensor]]] = []  # (first epoch, step)
        if list(config.speed_factors) != [1.0]:
            self.steps.append((0, SpeedPerturbation(sample_rate, config.speed_factors)))
        if max(config.reverb_prob, config.noise_prob, config.telephone_prob) > 0:
            self.steps.append((config.conditions_from_epoch, RecordingConditions(config, sample_rate)))
        if config.pad_prob > 0:
            self.steps.append((0, SilencePadding(sample_rate, config.pad_prob, config.pad_seconds, config.pad_attenuation_db)))
        if config.level_prob > 0:
            self.steps.append((config.conditions_from_epoch, RecordingLevel(config.level_prob, config.level_db)))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch (from 0) of the waveforms to come. Loader workers hold a copy of this
        object made when they start, so the trainer starts them anew each epoch."""
        self.epoch = epoch

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        for first_epoch, step in self.steps:
            if self.epoch >= first_epoch:
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
