"""The acoustic model: convolutional subsampling, stacked BiLSTMs, a linear layer to characters.

The subsampling front end is 1-D (each filter spans every mel bin) or 2-D
(small filters slid over time and frequency, as in Deep Speech 2 and ESPnet's
``Conv2dSubsampling``): a 2-D filter answers a formant pattern wherever it lies
on the mel axis, which is what differs from one speaker's vocal tract to another.

In training, one lower BiLSTM layer may also predict the transcript through the
same output layer (intermediate CTC, Lee and Watanabe, 2021): a second loss that
regularizes the lower layers and adds no parameters, so inference is unchanged.

Padding never changes a result: every convolution output past an
utterance's end is zeroed, the forward LSTMs read each utterance from its
start, and the backward LSTMs read it reversed within its own length, so an
utterance gives the same output alone as inside a padded batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from asr.features import valid_frames


@dataclass
class ModelConfig:
    """Sizes of the network; ``vocab_size`` counts the blank."""

    input_dim: int = 80
    vocab_size: int = 29
    conv_channels: int = 256  # what the front end gives the LSTMs (and the 1-D convolutions' width)
    conv_kernel: int = 5  # odd; the 2-D front end's filters are conv_kernel x conv_kernel
    subsampling: int = 4  # 2 or 4: one stride-2 convolution per factor of 2
    frontend: str = "conv1d"  # "conv1d" or "conv2d"
    conv2d_channels: int = 32  # the 2-D convolutions' channels
    hidden_size: int = 256
    num_layers: int = 3
    dropout: float = 0.2
    inter_ctc_layer: int = 0  # BiLSTM layer (from 1) whose output also gets a CTC loss in training; 0: none
    self_condition: bool = False  # the layer above inter_ctc_layer also reads that layer's CTC posteriors

    def __post_init__(self) -> None:
        if self.subsampling not in (2, 4):
            raise ValueError(f"subsampling must be 2 or 4, not {self.subsampling}")
        if self.frontend not in ("conv1d", "conv2d"):
            raise ValueError(f"frontend must be conv1d or conv2d, not {self.frontend}")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (so that each stride-2 layer maps n frames to ceil(n / 2)), not {self.conv_kernel}")
        if not 0 <= self.inter_ctc_layer < self.num_layers:
            raise ValueError(
                f"inter_ctc_layer must be 0 (none) or a layer below the top one (1 to {self.num_layers - 1}),"
                f" not {self.inter_ctc_layer}"
            )
        if self.self_condition and not self.inter_ctc_layer:
            raise ValueError("self_condition needs inter_ctc_layer: the layer whose posteriors condition the next")

    @property
    def stride2_layers(self) -> int:
        return int(math.log2(self.subsampling))

    def output_frames(self, frames: int | torch.Tensor) -> int | torch.Tensor:
        """Frames after subsampling: each stride-2 layer maps n to ceil(n / 2) (the 2-D front end
        does the same to the mel bins)."""
        for _ in range(self.stride2_layers):
            frames = (frames + 1) // 2
        return frames


def subsampling_frontend(config: ModelConfig) -> nn.Module:
    return Conv2dSubsampling(config) if config.frontend == "conv2d" else ConvSubsampling(config)


class ConvSubsampling(nn.Module):
    """Stride-2 1-D convolutions over time that shorten the sequence the LSTMs see."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layers = config.stride2_layers
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
            x = x * valid_frames(lengths, x.size(1))[:, :, None]
        return x, lengths


class Conv2dSubsampling(nn.Module):
    """Stride-2 2-D convolutions over (time, mel), then a linear layer from channels x mel bins to
    ``conv_channels``. Each filter is shared across frequency, so the front end shifts its
    response with a speaker's formants instead of learning each position anew."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layers = config.stride2_layers
        channels = [1] + [config.conv2d_channels] * layers
        self.convs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], config.conv_kernel, stride=2, padding=config.conv_kernel // 2)
            for i in range(layers)
        )
        self.project = nn.Linear(config.conv2d_channels * config.output_frames(config.input_dim), config.conv_channels)
        self.norm = nn.LayerNorm(config.conv_channels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, frames, dim)`` to ``(batch, frames / subsampling, conv_channels)``."""
        x = x[:, None]  # (batch, 1, frames, mel)
        for conv in self.convs:
            x = nn.functional.gelu(conv(x))
            lengths = (lengths + 1) // 2
            x = x * valid_frames(lengths, x.size(2))[:, None, :, None]
        x = x.transpose(1, 2).flatten(2)  # (batch, frames, channels x mel)
        x = nn.functional.gelu(self.norm(self.project(x)))
        return x * valid_frames(lengths, x.size(1))[:, :, None], lengths


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask, on the CPU, is drawn as ``torch.rand(...) >= p``.

    The same distribution (each unit kept with probability 1 - p, kept ones scaled by
    1 / (1 - p)), but torch's CPU dropout draws its mask with ``bernoulli_``, which took
    2.5 ms for one AN4 batch's LSTM activations against 0.7 ms for ``rand``, and the AN4
    model's training step ran 6.6% faster without it (``benchmarks/NOTES.md``). On a GPU,
    torch's fused kernel is used as is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0 < self.p < 1 or x.device.type != "cpu":
            return super().forward(x)
        keep = (torch.rand_like(x) >= self.p) * (1 / (1 - self.p))
        return x * keep.to(x.dtype)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``(batch, frames, dim)`` within its length; padding stays put."""
    steps = torch.arange(x.size(1), device=x.device)[None, :]
    mirrored = lengths.to(x.device)[:, None] - 1 - steps
    index = torch.where(mirrored >= 0, mirrored, steps)
    return x.gather(1, index[:, :, None].expand_as(x))


class BiLSTM(nn.Module):
    """Stacked bidirectional LSTMs over padded batches.

    Each direction of each layer is its own single-layer ``nn.LSTM``; the
    backward one runs on sequences reversed within their lengths. This gives
    exactly what packed sequences give, without them: on the CPU, torch's
    backward pass through a packed LSTM spends most of its time zero-filling
    gradient buffers (measured 3.5 times slower for AN4-sized batches).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(size, hidden_size, batch_first=True) for size in sizes)
        self.backward_layers = nn.ModuleList(nn.LSTM(size, hidden_size, batch_first=True) for size in sizes)
        self.dropout = Dropout(dropout)
        for lstm in [*self.forward_layers, *self.backward_layers]:
            _open_forget_gate(lstm)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, packed: bool | None = None) -> torch.Tensor:
        """The top layer's output ``(batch, frames, 2 * hidden_size)``."""
        for index in range(len(self.forward_layers)):
            x = self.layer(index, x, lengths, packed)
        return x

    def layer(self, index: int, x: torch.Tensor, lengths: torch.Tensor, packed: bool | None = None) -> torch.Tensor:
        """Layer ``index`` (from 0) over the layer below's output (with dropout first, above the bottom layer).

        ``packed`` (default: on a GPU) runs each direction over packed sequences: cuDNN then skips
        the padding, which is where its speed lies; on the CPU the padded form is the faster."""
        packed = x.is_cuda if packed is None else packed
        forward, backward = self.forward_layers[index], self.backward_layers[index]
        if index > 0:
            x = self.dropout(x)
        reversed_x = reverse_padded(x, lengths)
        if packed:
            ahead, behind = _run_packed(forward, x, lengths), _run_packed(backward, reversed_x, lengths)
        else:
            (ahead, _), (behind, _) = forward(x), backward(reversed_x)
        return torch.cat([ahead, reverse_padded(behind, lengths)], dim=-1)


def _run_packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """An LSTM over the valid frames only; the output is padded back with zeros to ``x``'s length."""
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    output, _ = lstm(packed)
    padded, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=x.size(1))
    return padded


def _open_forget_gate(lstm: nn.LSTM) -> None:
    """Start the forget-gate bias at 1 (Jozefowicz et al., 2015) so that gradients flow
    through time from the first step; torch orders the gates input, forget, cell, output."""
    hidden = lstm.hidden_size
    with torch.no_grad():
        lstm.bias_ih_l0[hidden : 2 * hidden] = 1.0
        lstm.bias_hh_l0[hidden : 2 * hidden] = 0.0


class CTCModel(nn.Module):
    """Log-probabilities over the vocabulary (blank = 0) for each subsampled frame."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.subsample = subsampling_frontend(config)
        self.lstm = BiLSTM(config.conv_channels, config.hidden_size, config.num_layers, config.dropout)
        self.dropout = Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, config.vocab_size)
        # Self-conditioned CTC (Nozaki and Komatsu, 2021): layer inter_ctc_layer's posteriors, mapped back to
        # its width, are added to its output, so the layers above refine a first guess instead of starting over.
        self.condition = nn.Linear(config.vocab_size, 2 * config.hidden_size) if config.self_condition else None

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor, intermediate: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """``(batch, frames, input_dim)`` features to ``(batch, frames', vocab)`` log-probabilities and
        frame counts; with ``intermediate``, also layer ``inter_ctc_layer``'s log-probabilities
        (through the same output layer) for the intermediate CTC loss."""
        x, lengths = self.subsample(features, lengths)
        tapped = None
        for index in range(self.config.num_layers):
            x = self.lstm.layer(index, x, lengths)
            if index + 1 == self.config.inter_ctc_layer and (intermediate or self.condition is not None):
                tapped = self.log_probs(x)
                if self.condition is not None:
                    x = x + self.condition(tapped.exp()).to(x.dtype)
        if intermediate:
            if tapped is None:
                raise ValueError("intermediate log-probabilities need model.inter_ctc_layer set")
            return self.log_probs(x), lengths, tapped
        return self.log_probs(x), lengths

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Output layer and log-softmax, in float32 whatever the autocast (CTC needs it)."""
        return self.output(self.dropout(x)).float().log_softmax(dim=-1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
