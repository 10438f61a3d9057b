"""Shared fixtures: real AN4 audio unpacked once per test session.

The corpus is looked for at ``$AN4_ARCHIVE``, ``data/an4_sphere.tar.gz`` and
``../shared/data/an4_sphere.tar.gz``; tests that need it are skipped, with the
reason, where none is present.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from asr import load
from asr.cli import main
from asr.data import Utterance, make_utterance, write_manifest
from asr.download import safe_extract
from asr.train import Trainer, load_config

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = [
    os.environ.get("AN4_ARCHIVE", ""),
    ROOT / "data" / "an4_sphere.tar.gz",
    ROOT.parent / "shared" / "data" / "an4_sphere.tar.gz",
]
LIBRISPEECH_SAMPLE = ROOT.parent / "shared" / "data" / "librispeech-sample"


def find_an4_archive() -> Path | None:
    for candidate in CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def an4_archive() -> Path:
    archive = find_an4_archive()
    if archive is None:
        pytest.skip("AN4 archive not found (set AN4_ARCHIVE or link it into data/)")
    return archive


@pytest.fixture(scope="session")
def an4_dir(an4_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unpacked corpus (``.../an4`` with ``wav/`` and ``etc/``)."""
    root = tmp_path_factory.mktemp("an4")
    safe_extract(an4_archive, root)
    return root / "an4"


@pytest.fixture(scope="session")
def an4_files(an4_dir: Path) -> list[Path]:
    """A dozen training utterances of three speakers, sorted."""
    files = sorted((an4_dir / "wav" / "an4_clstk").glob("f*/*.sph"))
    return files[:12]


@pytest.fixture(scope="session")
def an4_texts(an4_dir: Path) -> dict[str, str]:
    """Training transcripts by utterance id, as in ``etc/an4_train.transcription``."""
    lines = (an4_dir / "etc" / "an4_train.transcription").read_text().splitlines()
    pairs = (line.rsplit("(", 1) for line in lines)
    return {utt.strip(" )"): text.replace("<s>", "").replace("</s>", "") for text, utt in pairs}


@pytest.fixture(scope="session")
def memorized_model(an4_files: list[Path], an4_texts: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Utterance]]:
    """A small real model trained (about a minute) until it knows a dozen AN4 utterances by heart.

    A model that transcribes its inputs correctly is what the tests of long
    recordings, timestamps and the service need to make exact claims; it is
    trained with concatenation so that it also knows them joined end to end.
    Training is checked, not trusted: CPUs with different vector units round
    differently, and 150 epochs that suffice on one left "yes" as "yees" on
    another, so the run is resumed for more epochs until every text is exact.
    """
    root = tmp_path_factory.mktemp("memorized")
    utterances = [make_utterance(path, an4_texts[path.stem]) for path in an4_files]
    write_manifest(root / "train.jsonl", utterances)
    (root / "config.yaml").write_text(yaml.safe_dump(MEMORIZE))
    assert main(["stats", "--config", str(root / "config.yaml"), "--manifest", str(root / "train.jsonl"), "--out", str(root / "stats.json"), "--num-workers", "0"]) == 0
    config = load_config(root / "config.yaml")
    model_path, texts = root / "exp" / "model.pt", [u.text for u in utterances]
    for extra_epochs in (0, 50, 100):
        config.optim.epochs = MEMORIZE["optim"]["epochs"] + extra_epochs
        trainer = Trainer(config, root / "train.jsonl", None, root / "stats.json", root / "exp")
        if extra_epochs:
            trainer.resume()
        trainer.run()
        heard = [t.text for t in load(model_path).transcribe([u.audio_filepath for u in utterances])]
        if heard == texts:
            return model_path, utterances
    pytest.fail(f"the memorized model still mishears its training set: {heard} != {texts}")


MEMORIZE = {
    "model": {"conv_channels": 64, "hidden_size": 96, "num_layers": 2, "dropout": 0.0},
    "augment": {"concat_prob": 0.9, "freq_masks": 0, "time_masks": 0},
    "optim": {"epochs": 150, "max_batch_frames": 1000, "lr": 0.004, "warmup_steps": 10, "sortagrad_epochs": 0},
    "num_workers": 0,
}
