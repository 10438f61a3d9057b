from pathlib import Path

import pytest
import torch

from asr.audio import load_audio
from asr.augment import AugmentConfig, SilencePadding, SpecAugment, SpeedPerturbation, WaveformAugmentation, background_noise


def test_specaugment_masks_bands_and_frames() -> None:
    torch.manual_seed(0)
    features = torch.randn(4, 300, 80) + 5.0  # no natural zeros
    masked = SpecAugment(AugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width=20))(features)
    assert masked.shape == features.shape
    zeros = masked == 0
    assert zeros.any()
    # Masks are whole mel bands or whole frames, and differ between utterances.
    band_or_frame = zeros.all(dim=1, keepdim=True) | zeros.all(dim=2, keepdim=True)
    assert torch.equal(zeros, band_or_frame & zeros)
    assert not torch.equal(zeros[0], zeros[1])


def test_speed_perturbation_changes_duration_by_its_factor(an4_files: list[Path]) -> None:
    waveform = load_audio(an4_files[0], 16000)
    for factor in (0.9, 1.1):
        perturbed = SpeedPerturbation(16000, [factor])(waveform)
        assert abs(perturbed.numel() - waveform.numel() / factor) <= 2
    torch.manual_seed(0)
    lengths = {SpeedPerturbation(16000, [0.9, 1.0, 1.1])(waveform).numel() for _ in range(30)}
    assert len(lengths) == 3


def test_silence_padding_extends_with_the_utterances_own_background(an4_files: list[Path]) -> None:
    waveform = load_audio(an4_files[0], 16000)
    torch.manual_seed(0)
    pad = SilencePadding(16000, prob=1.0, max_seconds=1.0)
    lengths = [pad(waveform).numel() - waveform.numel() for _ in range(20)]
    assert all(0 <= extra <= 2 * 16000 for extra in lengths) and len(set(lengths)) > 10
    padded = pad(waveform)
    start = next(i for i in range(padded.numel()) if torch.equal(padded[i : i + waveform.numel()], waveform))
    before, after = padded[:start], padded[start + waveform.numel() :]
    noise = background_noise(waveform, 1600)
    # The padding is the quiet edge's own sound: as loud as it, far quieter than the speech.
    for part in (before, after):
        if part.numel() > 1600:
            assert float(part.square().mean().sqrt()) == pytest.approx(float(noise.square().mean().sqrt()), rel=0.2)
            assert float(part.square().mean()) < 0.1 * float(waveform.square().mean())
    # No clicks: no step between neighbouring samples larger than the noise's own.
    assert (before.diff().abs().max() if before.numel() > 1 else 0) <= noise.diff().abs().max() + 1e-6
    assert SilencePadding(16000, prob=0.0, max_seconds=1.0)(waveform) is waveform


def test_waveform_augmentation_follows_the_config(an4_files: list[Path]) -> None:
    waveform = load_audio(an4_files[0], 16000)
    assert WaveformAugmentation(AugmentConfig(), 16000)(waveform) is waveform
    steps = WaveformAugmentation(AugmentConfig(speed_factors=[0.9, 1.1], pad_prob=0.5), 16000).steps
    assert [type(step) for step in steps] == [SpeedPerturbation, SilencePadding]


def test_silence_padding_attenuates_from_room_tone_down_to_silence(an4_files: list[Path]) -> None:
    waveform = load_audio(an4_files[0], 16000)
    noise_rms = float(background_noise(waveform, 1600).square().mean().sqrt())
    pad = SilencePadding(16000, prob=1.0, max_seconds=1.0, attenuation_db=60.0)
    torch.manual_seed(0)
    gains_db = []
    for _ in range(40):
        padded = pad(waveform)
        start = next(i for i in range(padded.numel()) if torch.equal(padded[i : i + waveform.numel()], waveform))
        before = padded[:start]
        if before.numel() > 1600:
            gains_db.append(20 * torch.log10(before.square().mean().sqrt() / noise_rms).item())
    # Gains drawn uniformly in decibels between 0 and -60: never louder, spread over the range.
    assert len(gains_db) >= 20
    assert max(gains_db) < 1.5 and min(gains_db) < -45 and any(-35 < g < -25 for g in gains_db)
