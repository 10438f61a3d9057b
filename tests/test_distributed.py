"""DistributedDataParallel under torchrun: two processes on gloo, on the CPU, against one process.

Two ranks taking one batch each per step make the same updates as one process
accumulating the same two batches per step (``optim.accumulate_grad=2``): the
loss curves must agree, only rank 0 may write, and a resumed two-rank run
must continue the curve.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from asr.checkpoint import load_model
from asr.cli import main
from asr.data import make_utterance, write_manifest

DETERMINISTIC = {  # no dropout and no augmentation: the two runs see exactly the same numbers
    "model": {"conv_channels": 32, "hidden_size": 48, "num_layers": 2, "dropout": 0.0},
    "augment": {"speed_factors": [1.0], "specaugment_from_epoch": 100},
    "optim": {"epochs": 3, "max_batch_frames": 1200, "lr": 0.003, "warmup_steps": 2},
    "num_workers": 0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(an4_texts: dict[str, str], an4_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ddp")
    write_manifest(root / "train.jsonl", [make_utterance(path, an4_texts[path.stem]) for path in an4_files])
    (root / "config.yaml").write_text(yaml.safe_dump(DETERMINISTIC))
    assert main(["stats", "--config", str(root / "config.yaml"), "--manifest", str(root / "train.jsonl"), "--out", str(root / "stats.json"), "--num-workers", "0"]) == 0
    return {"root": root, "train": root / "train.jsonl", "config": root / "config.yaml", "stats": root / "stats.json"}


def train(setup: dict[str, Path], exp_dir: Path, processes: int, *extra: str) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "asr"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
                    "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "asr"]
    command = [*launcher, "train", "--config", str(setup["config"]), "--train", str(setup["train"]),
               "--stats", str(setup["stats"]), "--exp-dir", str(exp_dir), *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def losses(exp_dir: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (exp_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_ranks_follow_one_process_with_the_same_global_batch(setup: dict[str, Path], tmp_path: Path) -> None:
    train(setup, tmp_path / "one", 1, "--set", "optim.accumulate_grad=2")
    result = train(setup, tmp_path / "two", 2)
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 3 and one[-1] < one[0]
    assert two == pytest.approx(one, rel=1e-3)
    steps = [json.loads(line)["step"] for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [json.loads(line)["step"] for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    # Rank 0 alone writes and speaks: one line an epoch, not two.
    assert result.stdout.count("epoch 3:") == 1 and "on each of 2 processes" in result.stdout
    a, b = load_model(tmp_path / "one" / "model.pt").model, load_model(tmp_path / "two" / "model.pt").model
    assert all(torch.allclose(p, q, atol=1e-4) for p, q in zip(a.parameters(), b.parameters()))


def test_two_ranks_resume_where_they_stopped(setup: dict[str, Path], tmp_path: Path) -> None:
    train(setup, tmp_path / "whole", 2)
    train(setup, tmp_path / "parts", 2, "--set", "optim.epochs=1")
    resumed = train(setup, tmp_path / "parts", 2, "--resume")
    assert resumed.stdout.count("resumed from") == 1
    assert losses(tmp_path / "parts") == pytest.approx(losses(tmp_path / "whole"), rel=1e-3)


def test_two_ranks_stop_together_on_shards_of_unequal_parts(setup: dict[str, Path], tmp_path: Path) -> None:
    # 12 utterances in shards of 5, 5 and 2: rank 0 reads two shards (7 utterances), rank 1 one (5), or the reverse.
    assert main(["shards", str(setup["train"]), str(tmp_path / "shards"), "--utterances-per-shard", "5", "--no-shuffle"]) == 0
    shards = {**setup, "train": tmp_path / "shards"}
    result = train(shards, tmp_path / "exp", 2, "--set", "optim.epochs=2", "--set", "optim.max_batch_frames=600")
    records = [json.loads(line) for line in (tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and 0 < records[0]["step"] and records[1]["step"] == 2 * records[0]["step"]
    assert result.stdout.count("epoch 2:") == 1
