from pathlib import Path

import librosa
import numpy as np
import torch

from asr.audio import load_audio
from asr.features import (
    FeatureConfig,
    FeatureExtractor,
    accumulate_stats,
    mel_filterbank,
)


def test_mel_filterbank_matches_librosa() -> None:
    config = FeatureConfig()
    ours = mel_filterbank(config).T.numpy()  # (n_mels, n_freqs)
    theirs = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=1e-4)


def test_frame_counts_and_shapes(an4_files: list[Path]) -> None:
    config = FeatureConfig()
    extractor = FeatureExtractor(config)
    waveform = load_audio(an4_files[0], 16000)
    features, frames = extractor(waveform[None], torch.tensor([waveform.numel()]))
    assert features.shape == (1, frames.item(), 80)
    assert frames.item() == (waveform.numel() - 512) // 160 + 1


def test_padding_does_not_change_features(an4_files: list[Path]) -> None:
    extractor = FeatureExtractor(FeatureConfig())
    short, long = load_audio(an4_files[0], 16000), load_audio(an4_files[1], 16000)
    if short.numel() > long.numel():
        short, long = long, short
    alone, n_alone = extractor(short[None], torch.tensor([short.numel()]))
    batch = torch.zeros(2, long.numel())
    batch[0, : short.numel()] = short
    batch[1] = long
    padded, n_padded = extractor(batch, torch.tensor([short.numel(), long.numel()]))
    assert n_padded[0] == n_alone[0]
    torch.testing.assert_close(padded[0, : n_alone[0]], alone[0])
    assert padded[0, n_alone[0] :].abs().sum() == 0  # padding frames are zero


def test_global_statistics_normalize_to_zero_mean_unit_variance(an4_files: list[Path]) -> None:
    extractor = FeatureExtractor(FeatureConfig())
    waveforms = [load_audio(f, 16000) for f in an4_files[:4]]
    batches = [(w[None], torch.tensor([w.numel()])) for w in waveforms]
    mean, std, count = accumulate_stats(extractor, batches)
    extractor.set_stats(mean, std)
    frames = torch.cat([extractor(w, n)[0][0] for w, n in batches])
    assert frames.size(0) == count
    torch.testing.assert_close(frames.mean(0), torch.zeros(80), atol=1e-3, rtol=0)
    torch.testing.assert_close(frames.std(0, unbiased=False), torch.ones(80), atol=1e-3, rtol=0)


def test_quantization_floor_is_the_level_of_16_bit_noise(an4_files: list[Path]) -> None:
    extractor = FeatureExtractor(FeatureConfig(quantization_floor=True))
    # Noise of one 16-bit step puts, on average, the floor's power in each mel bin ...
    torch.manual_seed(0)
    noise = torch.randn(1, 160000) / 32768
    power = extractor.spectrogram(noise).transpose(1, 2) @ extractor.filterbank
    ratio = power[0].mean(0) / extractor.floor
    assert 0.95 < float(ratio.mean()) < 1.05 and 0.85 < float(ratio.min()) and float(ratio.max()) < 1.15
    # ... so digital silence reads as that noise, not as log(1e-10) ...
    silence, _ = extractor.log_mel(torch.zeros(1, 16000), torch.tensor([16000]))
    assert torch.allclose(silence[0], extractor.floor.log().expand_as(silence[0]))
    assert float(silence.mean()) > -20 > float(torch.log(torch.tensor(1e-10)))
    # ... and a real recording's speech and background, far above it, are unchanged.
    waveform = load_audio(an4_files[0], 16000)[None]
    lengths = torch.tensor([waveform.size(1)])
    floored, _ = extractor.log_mel(waveform, lengths)
    plain, _ = FeatureExtractor(FeatureConfig()).log_mel(waveform, lengths)
    assert float((floored - plain).abs().mean()) < 0.01
