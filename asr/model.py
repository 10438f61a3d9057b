"""The acoustic model: convolutional subsampling, stacked BiLSTMs, a linear layer to characters.

Padded batches go through packed sequences and every convolution output past
an utterance's end is zeroed, so an utterance gives the same output alone as
inside a padded batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    """Sizes of the network; ``vocab_size`` counts the blank."""

    input_dim: int = 80
    vocab_size: int = 29
    conv_channels: int = 256
    conv_kernel: int = 5
    subsampling: int = 4  # 2 or 4: one stride-2 convolution per factor of 2
    hidden_size: int = 256
    num_layers: int = 3
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.subsampling not in (2, 4):
            raise ValueError(f"subsampling must be 2 or 4, not {self.subsampling}")

    def output_frames(self, frames: int | torch.Tensor) -> int | torch.Tensor:
        """Frames after subsampling: each stride-2 layer maps n to ceil(n / 2)."""
        for _ in range(int(math.log2(self.subsampling))):
            frames = (frames + 1) // 2
        return frames


class ConvSubsampling(nn.Module):
    """Stride-2 1-D convolutions over time that shorten the sequence the LSTMs see."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layers = int(math.log2(config.subsampling))
        dims = [config.input_dim] + [config.conv_channels] * layers
        self.convs = nn.ModuleList(
            nn.Conv1d(dims[i], dims[i + 1], config.conv_kernel, stride=2, padding=config.conv_kernel // 2)
            for i in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(config.conv_channels) for _ in range(layers))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, frames, dim)`` to ``(batch, frames / subsampling, channels)``."""
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x.transpose(1, 2)).transpose(1, 2)
            x = nn.functional.gelu(norm(x))
            lengths = (lengths + 1) // 2
            x = x * (torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None])[:, :, None]
        return x, lengths


class CTCModel(nn.Module):
    """Log-probabilities over the vocabulary (blank = 0) for each subsampled frame."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.subsample = ConvSubsampling(config)
        self.lstm = nn.LSTM(
            input_size=config.conv_channels,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, config.vocab_size)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, frames, input_dim)`` features to ``(batch, frames', vocab)`` log-probabilities."""
        x, lengths = self.subsample(features, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed, _ = self.lstm(packed)
        x, _ = nn.utils.rnn.pad_packed_sequence(packed, batch_first=True, total_length=x.size(1))
        logits = self.output(self.dropout(x))
        return logits.float().log_softmax(dim=-1), lengths

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
