"""Streamed training data: manifests read a line at a time, and the AN4 training set packed into WebDataset shards."""

from __future__ import annotations

import io
import itertools
import json
import random
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from asr.cli import main
from asr.data import Batch, make_utterance, write_manifest
from asr.shards import ShardSource, read_index
from asr.streaming import ManifestSource, reservoir_sample, shuffled
from asr.train import Trainer, load_config

SAME_NUMBERS = {  # no dropout or random augmentation, so that two runs can be compared number for number
    "model": {"conv_channels": 32, "hidden_size": 32, "num_layers": 1, "dropout": 0.0},
    "augment": {"speed_factors": [1.0], "specaugment_from_epoch": 100, "concat_prob": 0.3},
    "optim": {"epochs": 1, "max_batch_frames": 3000, "lr": 0.003, "warmup_steps": 2},
    "stream": {"shuffle_buffer": 200, "bucket_utterances": 300, "shuffle_shards": False},
    "num_workers": 0,
}


@pytest.fixture(scope="module")
def corpus(an4_dir: Path, an4_texts: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The whole AN4 training set: its manifest, statistics, and its shards (100 utterances each, in manifest order)."""
    root = tmp_path_factory.mktemp("streaming")
    files = sorted((an4_dir / "wav" / "an4_clstk").glob("*/*.sph"))
    write_manifest(root / "train.jsonl", [make_utterance(path, an4_texts[path.stem]) for path in files])
    (root / "config.yaml").write_text(yaml.safe_dump(SAME_NUMBERS))
    assert main(["stats", "--config", str(root / "config.yaml"), "--manifest", str(root / "train.jsonl"), "--out", str(root / "stats.json"), "--num-workers", "0"]) == 0
    assert main(["shards", str(root / "train.jsonl"), str(root / "shards"), "--utterances-per-shard", "100", "--no-shuffle"]) == 0
    return {"root": root, "train": root / "train.jsonl", "shards": root / "shards", "config": root / "config.yaml", "stats": root / "stats.json"}


def trainer(corpus: dict[str, Path], train: Path, exp_dir: Path, *overrides: str) -> Trainer:
    config = load_config(corpus["config"], ["stream.enabled=true", *overrides])
    return Trainer(config, train, None, corpus["stats"], exp_dir)


def same(a: Batch, b: Batch) -> bool:
    return all(torch.equal(x, y) for x, y in [(a.waveforms, b.waveforms), (a.lengths, b.lengths), (a.targets, b.targets), (a.target_lengths, b.target_lengths)])


def test_shards_are_plain_tar_with_the_original_audio_and_an_index(corpus: dict[str, Path]) -> None:
    lines = [json.loads(line) for line in corpus["train"].read_text().splitlines()]
    shards, size = read_index(corpus["shards"])
    assert len(lines) == 948 and size.utterances == 948 and len(shards) == 10
    assert size.seconds == pytest.approx(sum(line["duration"] for line in lines), abs=1e-2)
    with tarfile.open(shards[0]) as tar:
        names = tar.getnames()
        assert names[:2] == ["000000000.json", "000000000.sph"] and len(names) == 200
        assert tar.extractfile("000000000.sph").read() == Path(lines[0]["audio_filepath"]).read_bytes()
        assert json.loads(tar.extractfile("000000000.json").read())["text"] == lines[0]["text"]


def test_shards_give_the_same_batches_and_training_as_the_manifest(corpus: dict[str, Path], tmp_path: Path) -> None:
    from_manifest = trainer(corpus, corpus["train"], tmp_path / "manifest")
    from_shards = trainer(corpus, corpus["shards"], tmp_path / "shards")
    assert from_manifest.batches_per_epoch == from_shards.batches_per_epoch
    for epoch in (0, 1):  # a new order each epoch, the same from both
        from_manifest.train_data.set_epoch(epoch)
        from_shards.train_data.set_epoch(epoch)
        a, b = list(from_manifest.loader), list(from_shards.loader)
        assert len(a) == len(b) > 0 and all(same(x, y) for x, y in zip(a, b))
        # The schedule's estimate of an epoch (118 here) misses the part of each batch that bucketing leaves empty.
        assert 0.85 * len(a) <= from_manifest.batches_per_epoch <= len(a)
    # Every utterance comes once, plus the partners of the joined ones.
    assert sum(len(batch.indices) for batch in a) == 948
    first, second = list(from_manifest.train_data.source(0, 0, 1))[:5], list(from_shards.train_data.source(0, 0, 1))[:5]
    assert [u for u, _ in first] == [u for u, _ in second]
    # A few training steps from each: identical losses.
    steps = [list(itertools.islice(t.steps(), 4)) for t in (from_manifest, from_shards)]
    results = [[t.train_step(group, augment=False) for group in groups] for t, groups in zip((from_manifest, from_shards), steps)]
    losses = [[loss.item() for loss, applied in run if applied] for run in results]
    assert losses[0] == losses[1] and len(losses[0]) == 4 and all(loss > 0 for loss in losses[0])


def test_streamed_parts_cover_the_corpus_once(corpus: dict[str, Path]) -> None:
    source = ManifestSource(corpus["train"])
    parts = [[u.audio_filepath for u, _ in source(0, part, 3)] for part in range(3)]
    everything = [u.audio_filepath for u, _ in source(0, 0, 1)]
    assert sorted(sum(parts, [])) == sorted(everything) and len(everything) == 948
    shards = ShardSource(corpus["shards"], shuffle=True, seed=1)
    by_shard = [[u.audio_filepath for u, _ in shards(epoch, part, 3)] for epoch in (0, 1) for part in range(3)]
    assert sorted(sum(by_shard[:3], [])) == sorted(everything) == sorted(sum(by_shard[3:], []))
    assert by_shard[:3] != by_shard[3:]  # the shards are dealt out differently each epoch


def test_shuffle_buffer_permutes_within_its_window() -> None:
    items = list(range(1000))
    out = list(shuffled(items, 50, random.Random(0)))
    assert sorted(out) == items and out != items
    assert all(item <= position + 50 for position, item in enumerate(out))  # nothing comes out before it was read


def test_a_broken_shard_is_reported_and_the_rest_is_read(corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    broken = Path(shutil.copytree(corpus["shards"], tmp_path / "shards"))
    shard = broken / "shard-000004.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    (broken / "shard-000007.tar").unlink()
    utterances = [u for u, _ in ShardSource(broken, shuffle=False)(0, 0, 1)]
    out = capsys.readouterr().out
    assert "shard-000004.tar: unexpected end of data" in out and "shard-000007.tar: No such file or directory" in out
    assert 748 < len(utterances) < 848  # all but shard 7 and the second half of shard 4
    assert all("Traceback" not in line for line in out.splitlines())


def test_an_incomplete_sample_is_reported_and_the_rest_is_read(corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    damaged = Path(shutil.copytree(corpus["shards"], tmp_path / "shards"))
    shard = damaged / "shard-000000.tar"
    with tarfile.open(shard) as tar:
        members = [(member, tar.extractfile(member).read()) for member in tar]
    entries = [member.name for member, _ in members if member.name.endswith(".json")]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in members:
            if member.name == entries[0]:
                continue  # a sample without its manifest entry
            if member.name == entries[1]:
                data = b'{"audio_filepath": "x.sph"'  # one cut short
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    utterances = [u for u, _ in ShardSource(damaged, shuffle=False)(0, 0, 1)]
    out = capsys.readouterr().out
    assert len(utterances) == 948 - 2
    assert "no manifest entry in the shard" in out and "bad manifest entry (JSONDecodeError" in out
    assert all(line.startswith("warning: skipping ") for line in out.splitlines())


def test_training_runs_from_shards_end_to_end(corpus: dict[str, Path], tmp_path: Path) -> None:
    assert main(["train", "--config", str(corpus["config"]), "--train", str(corpus["shards"]), "--stats", str(corpus["stats"]),
                 "--exp-dir", str(tmp_path), "--set", "stream.shuffle_shards=true", "--set", "num_workers=2",
                 "--set", "model.num_layers=1"]) == 0
    record = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert record["epoch"] == 1 and record["step"] > 50 and record["train_loss"] > 0


def test_reservoir_sample_is_uniform_and_holds_only_its_size() -> None:
    assert reservoir_sample(range(3), 5, random.Random(0)) == [0, 1, 2]
    counts = [0] * 10
    for seed in range(3000):
        sample = reservoir_sample(iter(range(10)), 3, random.Random(seed))
        assert len(sample) == len(set(sample)) == 3
        for item in sample:
            counts[item] += 1
    assert all(abs(count - 900) < 90 for count in counts), counts  # 3000 draws of 3 of 10: 900 each


def test_statistics_from_a_sample_match_the_whole_and_the_vocabulary_is_complete(corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lines = corpus["train"].read_text().splitlines()
    last = json.loads(lines[-1])
    last["text"] = "o'hara"  # the only apostrophe: the vocabulary comes from every line, not the sample
    (tmp_path / "train.jsonl").write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    args = ["stats", "--config", str(corpus["config"]), "--manifest", str(tmp_path / "train.jsonl"), "--num-workers", "0", "--max-utterances", "100"]
    assert main([*args, "--out", str(tmp_path / "a.json")]) == 0
    assert "from 100 of 948 utterances" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "b.json")]) == 0
    sample, again, whole = (json.loads(path.read_text()) for path in (tmp_path / "a.json", tmp_path / "b.json", corpus["stats"]))
    assert sample == again  # the sample is drawn with the configuration's seed
    assert "'" in sample["vocabulary"] and "'" not in whole["vocabulary"]
    mean, std = torch.tensor(whole["mean"]), torch.tensor(whole["std"])
    assert sample["frames"] < whole["frames"] / 5
    assert float(((torch.tensor(sample["mean"]) - mean).abs() / std).max()) < 0.15
    assert float(((torch.tensor(sample["std"]) - std).abs() / std).max()) < 0.1
