"""Log-mel features and their global normalization.

One :class:`FeatureExtractor` serves training, decoding and transcription; its
normalization statistics are buffers saved inside the model file, so the
features a model sees at inference are exactly those it was trained on.
Features are computed on batches of padded waveforms (on the GPU when there
is one), and every frame past an utterance's end is zeroed so that padding
never leaks into a result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torchaudio
from torch import nn


@dataclass
class FeatureConfig:
    """How waveforms become frames: 25 ms windows every 10 ms, 80 mel bins."""

    sample_rate: int = 16000
    n_mels: int = 80
    n_fft: int = 512
    win_ms: float = 25.0
    hop_ms: float = 10.0
    # Subtract each utterance's own mean first (cepstral mean normalization), which
    # removes a fixed channel or speaker offset before the global normalization.
    utterance_mean: bool = False
    # Floor each mel bin at the power that 16-bit quantization noise puts in it. Digital
    # silence (exact zeros, as files cut or made by software start) would otherwise sit
    # at log(1e-10), far below any recording's background, and the model has never
    # heard anything like it; floored, it is the quietest a 16-bit recording can be.
    quantization_floor: bool = False

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames for a waveform of ``num_samples``: every ``n_fft`` frame (the window centred
        in it) lies inside the audio, so padding after the end never changes a frame."""
        if isinstance(num_samples, torch.Tensor):
            return torch.clamp(num_samples - self.n_fft, min=0) // self.hop_length + 1
        return max(num_samples - self.n_fft, 0) // self.hop_length + 1


def mel_filterbank(config: FeatureConfig) -> torch.Tensor:
    """The ``(n_fft // 2 + 1, n_mels)`` Slaney-style filterbank (librosa's default)."""
    return torchaudio.functional.melscale_fbanks(
        n_freqs=config.n_fft // 2 + 1,
        f_min=0.0,
        f_max=config.sample_rate / 2,
        n_mels=config.n_mels,
        sample_rate=config.sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )


def quantization_floor(config: FeatureConfig, filterbank: torch.Tensor) -> torch.Tensor:
    """``(n_mels,)`` expected mel power of white noise of one 16-bit step (variance ``2**-30``).

    A frame of white noise of variance v has power ``v * sum(window**2)`` in every
    FFT bin; a mel bin sums those bins through its filter.
    """
    window = torch.hann_window(config.win_length, dtype=torch.float64)
    return (2.0**-30 * window.square().sum() * filterbank.double().sum(0)).float()


def valid_frames(frames: torch.Tensor, total: int) -> torch.Tensor:
    """``(batch, total)`` mask, true for the first ``frames[b]`` frames of each utterance."""
    return torch.arange(total, device=frames.device)[None, :] < frames[:, None]


class FeatureExtractor(nn.Module):
    """Padded waveforms ``(batch, samples)`` to normalized log-mel ``(batch, frames, n_mels)``."""

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            center=False,
            power=2.0,
        )
        self.register_buffer("filterbank", mel_filterbank(config), persistent=False)
        # The least mel power a frame may have (log of zero is minus infinity).
        floor = quantization_floor(config, self.filterbank) if config.quantization_floor else torch.zeros(config.n_mels)
        self.register_buffer("floor", floor.clamp(min=1e-10), persistent=False)
        self.register_buffer("mean", torch.zeros(config.n_mels))
        self.register_buffer("std", torch.ones(config.n_mels))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Install the global mean and standard deviation of the training features."""
        self.mean.copy_(mean)
        self.std.copy_(std)

    def log_mel(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Un-normalized log-mel frames and the number of valid frames per utterance."""
        if waveforms.size(-1) < self.config.n_fft:
            waveforms = nn.functional.pad(waveforms, (0, self.config.n_fft - waveforms.size(-1)))
        power = self.spectrogram(waveforms)  # (batch, freq, frames)
        mel = torch.matmul(power.transpose(1, 2), self.filterbank)  # (batch, frames, n_mels)
        frames = self.config.num_frames(lengths).clamp(max=mel.size(1))
        log_mel = torch.log(torch.maximum(mel, self.floor))
        if self.config.utterance_mean:
            valid = valid_frames(frames, log_mel.size(1))[:, :, None]
            mean = (log_mel * valid).sum(1, keepdim=True) / frames[:, None, None].clamp(min=1)
            log_mel = log_mel - mean
        return log_mel, frames

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, frames = self.log_mel(waveforms, lengths)
        features = (features - self.mean) / self.std
        return features * valid_frames(frames, features.size(1))[:, :, None], frames


def accumulate_stats(
    extractor: FeatureExtractor, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Global per-bin mean and standard deviation over every valid frame.

    Sums are kept in float64 so that millions of frames do not lose precision.
    Returns ``(mean, std, frames)``.
    """
    total = torch.zeros(extractor.config.n_mels, dtype=torch.float64)
    squares = torch.zeros_like(total)
    count = 0
    with torch.no_grad():
        for waveforms, lengths in batches:
            features, frames = extractor.log_mel(waveforms, lengths)
            for utterance, n in zip(features, frames.tolist()):
                valid = utterance[:n].double()
                total += valid.sum(0)
                squares += (valid**2).sum(0)
                count += n
    if count == 0:
        raise ValueError("no frames to compute statistics from")
    mean = total / count
    std = (squares / count - mean**2).clamp(min=1e-10).sqrt()
    return mean.float(), std.float(), count
