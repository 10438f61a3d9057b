from pathlib import Path

import pytest
import torch

from asr.audio import load_audio
from asr.augment import (
    AugmentConfig,
    RecordingConditions,
    RecordingLevel,
    SilencePadding,
    SpecAugment,
    SpeedPerturbation,
    WaveformAugmentation,
    background_noise,
    coloured_noise,
    reverberant,
    room_response,
    stored_16_bit,
    telephone_band,
    with_noise,
)


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
    assert [type(step) for _, step in steps] == [SpeedPerturbation, SilencePadding]
    config = AugmentConfig(noise_prob=0.5, pad_prob=0.5, level_prob=0.5, conditions_from_epoch=3)
    steps = WaveformAugmentation(config, 16000).steps
    assert [(first, type(step)) for first, step in steps] == [(3, RecordingConditions), (0, SilencePadding), (3, RecordingLevel)]
    with pytest.raises(ValueError, match="noise_snr_db must be"):
        AugmentConfig(noise_snr_db=[30.0, 5.0])


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


def band_power(waveform: torch.Tensor, low_hz: float, high_hz: float) -> float:
    """The waveform's power between two frequencies (16 kHz sampling)."""
    spectrum = torch.fft.rfft(waveform).abs().square()
    hz = torch.fft.rfftfreq(waveform.numel(), 1 / 16000)
    return float(spectrum[(hz >= low_hz) & (hz < high_hz)].sum())


def test_noise_is_added_at_the_drawn_snr_in_the_drawn_colour(an4_files: list[Path]) -> None:
    waveform = load_audio(an4_files[0], 16000)
    generator = torch.Generator().manual_seed(0)
    white, brown = (coloured_noise(waveform.numel(), exponent, generator) for exponent in (0.0, 2.0))
    for noise in (white, brown):
        added = with_noise(waveform, noise, 10.0) - waveform
        snr = 10 * torch.log10(waveform.square().mean() / added.square().mean())
        assert float(snr) == pytest.approx(10.0, abs=0.01)
    # White noise has as much power in each kilohertz; brown noise falls by 6 dB an octave.
    assert band_power(white, 500, 1500) == pytest.approx(band_power(white, 6000, 7000), rel=0.1)
    assert band_power(brown, 500, 1500) > 30 * band_power(brown, 6000, 7000)


def test_room_response_decays_by_60_db_in_its_reverberation_time(an4_files: list[Path]) -> None:
    response = room_response(0.5, 16000, torch.Generator().manual_seed(0))
    assert response.numel() == 8000 and float(response.norm()) == pytest.approx(1.0)
    tail = response[1:]
    first, last = tail[:800].square().mean(), tail[-800:].square().mean()  # centred 0.05 and 0.95 of the way
    assert 48 < float(10 * torch.log10(first / last)) < 60  # 54 dB expected
    waveform = load_audio(an4_files[0], 16000)
    wet = reverberant(waveform, response)
    assert wet.numel() == waveform.numel() and float(wet.abs().max()) == pytest.approx(float(waveform.abs().max()))
    # The room smears the speech into its pauses: the quiet edge gets louder relative to the peak.
    assert background_noise(wet, 1600).square().mean() > background_noise(waveform, 1600).square().mean()


def test_telephone_band_keeps_nothing_above_4_khz(an4_files: list[Path]) -> None:
    waveform = load_audio(an4_files[0], 16000)
    narrow = telephone_band(waveform, 16000)
    assert narrow.numel() == waveform.numel()
    assert band_power(narrow, 4500, 8000) < 1e-5 * band_power(waveform, 4500, 8000)
    assert band_power(narrow, 300, 3400) == pytest.approx(band_power(waveform, 300, 3400), rel=0.05)


def test_recording_level_is_stored_as_16_bit(an4_files: list[Path]) -> None:
    waveform = load_audio(an4_files[0], 16000)
    quiet = RecordingLevel(1.0, [-30.0, -30.0])(waveform)
    assert torch.equal(quiet * 32768, torch.round(quiet * 32768))
    assert float(20 * torch.log10(quiet.square().mean().sqrt() / waveform.square().mean().sqrt())) == pytest.approx(-30.0, abs=0.5)
    loud = RecordingLevel(1.0, [30.0, 30.0])(waveform)
    assert float(loud.max()) == 32767 / 32768 and float(loud.min()) == -1.0  # clipped at full scale
    assert torch.equal(stored_16_bit(waveform), waveform)  # AN4 is 16-bit already: storing it again changes nothing
    assert RecordingLevel(0.0, [-30.0, 10.0])(waveform) is waveform
