from pathlib import Path

import torch

from asr.audio import load_audio
from asr.augment import AugmentConfig, SpecAugment, SpeedPerturbation


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
