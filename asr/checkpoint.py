"""The self-contained model file, and atomic writes for everything training saves.

A model file holds the weights, the model and feature configurations, the
feature normalization statistics and the vocabulary: nothing else is needed
to transcribe. Files are written to a temporary name and renamed, so an
interrupted write never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from asr.features import FeatureConfig, FeatureExtractor
from asr.model import CTCModel, ModelConfig
from asr.text import Tokenizer

FORMAT = "asr-ctc/1"


class ModelFileError(Exception):
    """A model file that cannot be loaded; the message names the file and the reason."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as out:
            torch.save(obj, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@dataclass
class ASRModel:
    """Everything needed to turn audio into text: features, network and vocabulary."""

    features: FeatureExtractor
    model: CTCModel
    tokenizer: Tokenizer
    info: dict[str, Any] = field(default_factory=dict)  # how it was trained, for the record
    decoding: dict[str, float] = field(default_factory=dict)  # beam-search settings tuned on dev ("asr tune")

    def to(self, device: torch.device | str) -> ASRModel:
        self.features.to(device)
        self.model.to(device)
        return self

    def eval(self) -> ASRModel:
        self.features.eval()
        self.model.eval()
        return self


def save_model(path: str | Path, asr_model: ASRModel) -> None:
    atomic_save(
        {
            "format": FORMAT,
            "model_config": asdict(asr_model.model.config),
            "feature_config": asdict(asr_model.features.config),
            "feature_mean": asr_model.features.mean.cpu(),
            "feature_std": asr_model.features.std.cpu(),
            "vocabulary": asr_model.tokenizer.vocabulary,
            "state_dict": {k: v.cpu() for k, v in asr_model.model.state_dict().items()},
            "info": asr_model.info,
            "decoding": asr_model.decoding,
        },
        path,
    )


def load_model(path: str | Path, device: torch.device | str = "cpu") -> ASRModel:
    """Load a model file written by :func:`save_model`, ready for inference on ``device``."""
    saved = _read(path)
    features = FeatureExtractor(FeatureConfig(**saved["feature_config"]))
    features.set_stats(saved["feature_mean"], saved["feature_std"])
    model = CTCModel(ModelConfig(**saved["model_config"]))
    model.load_state_dict(saved["state_dict"])
    tokenizer = Tokenizer(saved["vocabulary"])
    return ASRModel(features, model, tokenizer, saved.get("info", {}), saved.get("decoding", {})).to(device).eval()


def store_decoding(path: str | Path, decoding: dict[str, float]) -> None:
    """Record tuned beam-search settings in an existing model file (atomically)."""
    saved = _read(path)
    saved["decoding"] = decoding
    atomic_save(saved, path)


def _read(path: str | Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt file
        raise ModelFileError(f"{path}: not a readable model file ({type(error).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an asr model file (expected format {FORMAT})")
    return saved
