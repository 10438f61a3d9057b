"""The LibriSpeech recipe on the shared sample: four real utterances in the official layout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "data" / "librispeech-sample"

# What the official files say: ids from the transcripts, durations from the FLAC headers
# (samples / 16000), transcripts normalized (lower case).
EXPECTED = [
    ("1089-134686-0000", 166960, "he hoped there would be stew for dinner turnips and carrots and bruised potatoes and fat mutton pieces to be ladled out in thick peppered flour fattened sauce"),
    ("1089-134686-0001", 52400, "stuff it into you his belly counselled him"),
    ("1089-134691-0000", 33360, "he could wait no longer"),
    ("1089-134691-0001", 86640, "for a full hour he had paced up and down waiting but he could wait no longer"),
]


@pytest.fixture(scope="module")
def sample() -> Path:
    if not (SAMPLE / "LibriSpeech" / "test-clean").is_dir():
        pytest.skip(f"LibriSpeech sample not found at {SAMPLE}")
    return SAMPLE


def run_recipe(sample: Path, work: Path, *options: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("LIBRISPEECH_DIR", None)
    command = ["bash", "recipes/librispeech/run.sh", "--librispeech-dir", str(sample), "--data-dir", str(work / "data"),
               "--exp-dir", str(work / "exp"), "--train-subsets", "test-clean", "--dev-subset", "test-clean",
               "--test-subsets", "test-clean", *options]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_preparation_is_exact(sample: Path, tmp_path: Path) -> None:
    run_recipe(sample, tmp_path, "--stop-stage", "1")
    lines = [json.loads(line) for line in (tmp_path / "exp/manifests/test_clean.jsonl").read_text().splitlines()]
    assert [(Path(u["audio_filepath"]).stem, u["duration"], u["text"]) for u in lines] == [
        (utt_id, round(samples / 16000, 4), text) for utt_id, samples, text in EXPECTED
    ]
    assert all(Path(u["audio_filepath"]).is_absolute() and Path(u["audio_filepath"]).is_file() for u in lines)
    # The last transcript of a chapter file without a final newline is read all the same.
    assert not (sample / "LibriSpeech/test-clean/1089/134691/1089-134691.trans.txt").read_bytes().endswith(b"\n")


def test_a_transcript_without_audio_is_reported_and_left_out(sample: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sample, copy)
    (copy / "LibriSpeech/test-clean/1089/134686/1089-134686-0001.flac").unlink()
    result = run_recipe(copy, tmp_path, "--stop-stage", "1")
    lines = (tmp_path / "exp/manifests/test_clean.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "1089-134686-0001.flac: no such file" in result.stderr
    assert "left out 1" in result.stdout


def test_training_and_decoding_run_through_the_stages(sample: Path, tmp_path: Path) -> None:
    tiny = ["--train-set", "optim.epochs=2", "--train-set", "model.hidden_size=32", "--train-set", "model.num_layers=1",
            "--train-set", "model.conv_channels=32", "--train-set", "num_workers=0", "--train-set", "optim.max_batch_frames=3000"]
    result = run_recipe(sample, tmp_path, "--methods", "greedy", *tiny)
    exp = tmp_path / "exp"
    assert (exp / "model.pt").is_file() and len((exp / "metrics.jsonl").read_text().splitlines()) == 2
    results = json.loads((exp / "results.json").read_text())
    assert set(results) == {"dev", "test_clean"} and results["test_clean"]["greedy"]["utterances"] == 4
    assert "stage 4" not in result.stdout  # no LM stages without beam_lm


def test_the_recipe_packs_shards_and_trains_from_them(sample: Path, tmp_path: Path) -> None:
    tiny = ["--train-set", "optim.epochs=1", "--train-set", "model.hidden_size=32", "--train-set", "model.num_layers=1",
            "--train-set", "model.conv_channels=32", "--train-set", "num_workers=0", "--train-set", "optim.max_batch_frames=3000"]
    result = run_recipe(sample, tmp_path, "--shards", "--stop-stage", "3", *tiny)
    shards = tmp_path / "exp/shards/train"
    assert json.loads((shards / "index.json").read_text())["utterances"] == 4
    assert "wrote 1 shards of 4 utterances" in result.stdout and "training" in result.stdout
    assert json.loads((tmp_path / "exp/metrics.jsonl").read_text())["step"] >= 1
