"""Training-time augmentation: speed perturbation of waveforms, SpecAugment of features.

Neither runs at inference; both are configured by :class:`AugmentConfig`.
"""

from __future__ import annotations

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


class SpeedPerturbation:
    """Resample a waveform as if played one of ``factors`` times faster (torchaudio's transform)."""

    def __init__(self, sample_rate: int, factors: list[float]) -> None:
        self.transform = torchaudio.transforms.SpeedPerturbation(sample_rate, factors)

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        perturbed, _ = self.transform(waveform)
        return perturbed

    @classmethod
    def from_config(cls, config: AugmentConfig, sample_rate: int) -> SpeedPerturbation | None:
        """None when the only factor is 1, so that unperturbed training skips the resampler."""
        return None if list(config.speed_factors) == [1.0] else cls(sample_rate, config.speed_factors)


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
