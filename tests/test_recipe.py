"""The AN4 recipe end to end on a slice of the corpus, and ``asr transcribe`` on its model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.checkpoint import load_model
from asr.lm import arpa_vocabulary

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recipe_run(an4_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("recipe")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("AN4_ARCHIVE", None)
    command = [
        "bash", "recipes/an4/run.sh",
        "--an4-archive", str(an4_archive),
        "--data-dir", str(work / "data"),
        "--exp-dir", str(work / "exp"),
        "--subset", "24",
        "--train-set", "optim.epochs=2",
        "--train-set", "model.hidden_size=32",
        "--train-set", "model.num_layers=1",
        "--train-set", "model.inter_ctc_layer=0",  # one layer: none below the top for intermediate CTC
        "--train-set", "model.conv_channels=32",
        "--train-set", "num_workers=0",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work, result


def test_every_stage_leaves_its_outputs(recipe_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    work, result = recipe_run
    exp = work / "exp"
    # 0: data, unpacked with its licence
    assert (work / "data/an4/LICENSE").is_file() and (work / "data/an4/.unpacked").is_file()
    # 1: manifests in NeMo's convention; dev speakers never in train
    sets = {}
    for name in ("train", "dev", "test"):
        lines = [json.loads(line) for line in (exp / "manifests" / f"{name}.jsonl").read_text().splitlines()]
        assert len(lines) == 24
        assert all(set(line) == {"audio_filepath", "duration", "text"} and line["duration"] > 0 for line in lines)
        assert all(line["text"] == line["text"].lower().strip() for line in lines)
        sets[name] = lines
    speakers = {name: {Path(u["audio_filepath"]).parent.name for u in lines} for name, lines in sets.items()}
    assert not speakers["train"] & speakers["dev"]
    assert all("an4test_clstk" in u["audio_filepath"] for u in sets["test"])
    # 2: statistics and vocabulary
    stats = json.loads((exp / "stats.json").read_text())
    assert len(stats["mean"]) == len(stats["std"]) == 80 and stats["vocabulary"][0] == "<blank>"
    # 3: training
    assert len((exp / "metrics.jsonl").read_text().splitlines()) == 2
    assert (exp / "model.pt").is_file() and (exp / "curves.png").is_file()
    # 4: the language model, from the training transcripts
    arpa = (exp / "lm.arpa").read_text()
    assert arpa.startswith("\\data\\") and "\\3-grams:" in arpa
    # 5: tuning on dev stores the chosen values in the model file
    model = load_model(exp / "model.pt")
    assert set(model.decoding) == {"lm_weight", "word_score", "letter_lm_scale", "lexicon"}
    grid = [json.loads(line) for line in (exp / "tune/grid.jsonl").read_text().splitlines()]
    assert len(grid) == 7 * 7  # the letter scale is tried only when asked
    assert all(grid[0][name] == model.decoding[name] for name in ("lm_weight", "word_score", "letter_lm_scale"))
    assert grid[0]["wer"] == min(point["wer"] for point in grid)
    # 6: both decodings print their real-time factors; greedy votes over three speeds
    assert result.stdout.count("real-time factor") == 4
    assert "greedy, voted over speeds 1, 0.9, 1.1: decoded 24 utterances" in result.stdout and "beam search (LM weight" in result.stdout
    # 7: scoring
    results = json.loads((exp / "results.json").read_text())
    for name in ("dev", "test"):
        assert set(results[name]) == {"greedy", "beam_lm"}
        for method in ("greedy", "beam_lm"):
            assert set(results[name][method]) == {"wer", "cer", "utterances"}
            assert results[name][method]["utterances"] == 24
            decode = exp / f"decode_{name}_{method}"
            assert len((decode / "hyp.txt").read_text().splitlines()) == 24
            assert "=== " in (decode / "alignments.txt").read_text()
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("test beam_lm: WER") and "CER" in last


def test_other_speakers_can_be_held_out_as_dev(
    recipe_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    work, _ = recipe_run

    def make_manifests(dev_speakers: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "recipes/an4/local/make_manifests.py", "--an4-dir", str(work / "data/an4"),
                   "--out-dir", str(tmp_path), "--dev-speakers", dev_speakers]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)

    result = make_manifests("fclc,mema")
    assert result.returncode == 0, result.stderr
    speakers = {
        name: {Path(json.loads(line)["audio_filepath"]).parent.name for line in (tmp_path / f"{name}.jsonl").open()}
        for name in ("train", "dev")
    }
    assert speakers["dev"] == {"fclc", "mema"}
    assert "fjdn" in speakers["train"] and not speakers["train"] & speakers["dev"]  # the usual dev speaker trains
    result = make_manifests("fclc,nobody")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "nobody" in result.stderr and "Traceback" not in result.stderr


def test_tuning_and_the_lm_refuse_test_data(recipe_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    work, _ = recipe_run
    exp = work / "exp"
    before = (exp / "model.pt").read_bytes()
    for command in (
        ["tune", str(exp / "model.pt"), str(exp / "manifests/test.jsonl"), "--lm", str(exp / "lm.arpa"), "--out-dir", str(work / "t")],
        ["lm", "--manifest", str(exp / "manifests/test.jsonl"), "--out", str(work / "test.arpa")],
    ):
        result = subprocess.run([sys.executable, "-m", "asr", *command], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "refusing test data" in result.stderr and "Traceback" not in result.stderr
    assert (exp / "model.pt").read_bytes() == before
    assert not (work / "test.arpa").exists() and not (work / "t").exists()


def test_transcribe_with_the_lm_uses_the_tuned_values(recipe_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    work, _ = recipe_run
    exp = work / "exp"
    audio = json.loads((exp / "manifests/test.jsonl").read_text().splitlines()[0])["audio_filepath"]
    result = subprocess.run(
        [sys.executable, "-m", "asr", "transcribe", str(exp / "model.pt"), audio, "--lm", str(exp / "lm.arpa")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    path, text = result.stdout.rstrip("\n").split("\t")
    vocabulary = set(arpa_vocabulary(exp / "lm.arpa"))
    assert path == audio and all(word in vocabulary for word in text.split())
    assert result.stderr == ""  # KenLM's loading chatter is kept off the terminal
    hyp = (exp / "decode_test_beam_lm/hyp.txt").read_text().splitlines()
    assert f"{Path(audio).stem} {text}".strip() in [line.strip() for line in hyp]


def test_stages_are_idempotent(recipe_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    work, _ = recipe_run
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = ["bash", "recipes/an4/run.sh", "--data-dir", str(work / "data"), "--exp-dir", str(work / "exp"),
               "--subset", "24", "--stop-stage", "3", "--train-set", "optim.epochs=2",
               "--train-set", "model.hidden_size=32", "--train-set", "model.num_layers=1",
               "--train-set", "model.inter_ctc_layer=0", "--train-set", "model.conv_channels=32"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already unpacked" in result.stdout
    assert "resumed from" in result.stdout
    assert len((work / "exp/metrics.jsonl").read_text().splitlines()) == 2


def test_transcribe_reports_bad_files_and_goes_on(recipe_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    work, _ = recipe_run
    test_audio = [json.loads(line)["audio_filepath"] for line in (work / "exp/manifests/test.jsonl").read_text().splitlines()[:2]]
    # The same speech as 44.1 kHz stereo FLAC: mixed down and resampled on reading.
    samples, rate = soundfile.read(test_audio[0])
    flac = tmp_path / "stereo.flac"
    soundfile.write(flac, np.stack([samples, samples], 1), rate)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0), 16000)
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio")
    files = [test_audio[0], str(tmp_path / "missing.wav"), str(flac), str(notes), test_audio[1], str(empty)]
    result = subprocess.run(
        [sys.executable, "-m", "asr", "transcribe", str(work / "exp/model.pt"), *files],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    printed = [line.split("\t") for line in result.stdout.splitlines()]
    assert [p[0] for p in printed] == [test_audio[0], str(flac), test_audio[1]]
    assert printed[0][1] == printed[1][1]  # stereo FLAC transcribes like its source
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 4 and "Traceback" not in result.stderr
    for path, reason in [("missing.wav", "no such file"), ("notes.wav", "not readable"), ("empty.wav", "no audio")]:
        assert any(path in line and reason in line for line in errors)


def test_missing_model_file_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asr", "transcribe", str(tmp_path / "nope.pt"), "a.wav"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.pt'}: no such model file"
