"""A real model trained for a few steps on real AN4 audio."""

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from asr.audio import load_audio
from asr.checkpoint import load_model
from asr.cli import main
from asr.data import Batch, Utterance, make_utterance, read_manifest, write_manifest
from asr.train import ConfigError, Trainer, ema_decay, load_config, loader_workers, lr_factor, output_entropy, update_ema

TINY = {
    "model": {"conv_channels": 32, "hidden_size": 32, "num_layers": 1, "dropout": 0.0},
    "optim": {"epochs": 2, "max_batch_frames": 3000, "lr": 0.003, "warmup_steps": 2},
    "num_workers": 0,
}


@pytest.fixture(scope="module")
def setup(an4_texts: dict[str, str], an4_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    utterances = [make_utterance(path, an4_texts[path.stem]) for path in an4_files]
    write_manifest(root / "train.jsonl", utterances[:10])
    write_manifest(root / "dev.jsonl", utterances[10:])
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["stats", "--config", str(root / "tiny.yaml"), "--manifest", str(root / "train.jsonl"), "--out", str(root / "stats.json"), "--num-workers", "0"]) == 0
    return {"root": root, "train": root / "train.jsonl", "dev": root / "dev.jsonl", "config": root / "tiny.yaml", "stats": root / "stats.json"}


def make_trainer(setup: dict[str, Path], exp_dir: Path, *overrides: str) -> Trainer:
    config = load_config(setup["config"], list(overrides))
    return Trainer(config, setup["train"], setup["dev"], setup["stats"], exp_dir)


def test_training_learns_and_writes_its_experiment_folder(setup: dict[str, Path], tmp_path: Path) -> None:
    trainer = make_trainer(setup, tmp_path, "optim.epochs=4")
    trainer.run()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert all(r["throughput"] > 0 and "dev_wer" in r for r in records)
    for name in ("checkpoint.pt", "model.pt", "curves.png", "config.yaml"):
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp"))
    model = load_model(tmp_path / "model.pt")
    assert model.tokenizer.vocabulary == json.loads(setup["stats"].read_text())["vocabulary"]
    assert torch.equal(model.features.mean, torch.tensor(json.loads(setup["stats"].read_text())["mean"]))
    assert model.info["dev_wer"] == min(r["dev_wer"] for r in records)


def test_best_epochs_are_averaged_only_if_dev_agrees(setup: dict[str, Path], tmp_path: Path) -> None:
    trainer = make_trainer(setup, tmp_path, "optim.epochs=3", "optim.average_best=2")
    trainer.run()
    assert len(list((tmp_path / "snapshots").glob("*.pt"))) == 2
    average = json.loads((tmp_path / "average.json").read_text())
    assert len(average["epochs"]) == 2
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    info = load_model(tmp_path / "model.pt").info
    if average["kept"]:
        assert info["averaged_epochs"] == average["epochs"] and info["dev_wer"] == average["dev_wer"]
        assert average["dev_wer"] <= min(r["dev_wer"] for r in records)
    else:
        assert "averaged_epochs" not in info and info["dev_wer"] == min(r["dev_wer"] for r in records)


def test_resume_continues_where_a_run_stopped(setup: dict[str, Path], tmp_path: Path) -> None:
    make_trainer(setup, tmp_path, "optim.epochs=1").run()
    first = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    resumed = make_trainer(setup, tmp_path, "optim.epochs=2")
    resumed.resume()
    assert resumed.step == first["step"] and resumed.epoch == 1
    resumed.run()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[1]["step"] == 2 * first["step"]


@pytest.mark.parametrize("ema_decay", [0.0, 0.999])
def test_nonfinite_loss_is_skipped_and_counted(setup: dict[str, Path], tmp_path: Path, ema_decay: float) -> None:
    trainer = make_trainer(setup, tmp_path, f"optim.ema_decay={ema_decay}")
    batch = next(iter(trainer.loader))
    poisoned = Batch(batch.indices, batch.waveforms * float("nan"), batch.lengths, batch.targets, batch.target_lengths)
    loss, applied = trainer.train_step([batch], augment=False)
    assert applied and torch.isfinite(loss) and loss > 0
    before = copy.deepcopy(trainer.state())
    _, applied = trainer.train_step([poisoned], augment=False)
    assert not applied and trainer.nonfinite_steps == 1
    # Skipped by the fused AdamW on the device: weights, optimizer state and moving average as they were.
    after = trainer.state()
    assert equal_tensors(before["model"], after["model"]) and equal_tensors(before["optimizer"], after["optimizer"])
    assert ema_decay == 0 or equal_tensors(before["ema"], after["ema"])
    _, applied = trainer.train_step([batch], augment=True)
    assert applied and trainer.nonfinite_steps == 1 and not equal_tensors(before["model"], trainer.model.state_dict())


def equal_tensors(a: object, b: object) -> bool:
    """Whether two nested dicts and lists hold equal tensors (and equal everything else)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(equal_tensors(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_labels_longer_than_frames_are_filtered_and_counted(setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    utterances = [Utterance(u["audio_filepath"], u["duration"], u["text"]) for u in map(json.loads, setup["train"].read_text().splitlines())]
    utterances[0].text = " ".join([utterances[0].text] * 40)  # encodable, but far too long for its audio
    write_manifest(tmp_path / "train.jsonl", utterances)
    config = load_config(setup["config"])
    trainer = Trainer(config, tmp_path / "train.jsonl", None, setup["stats"], tmp_path / "exp")
    assert trainer.train_utterances == len(utterances) - 1
    out = capsys.readouterr().out
    assert "output frames" in out and "left out 1 of 10 training utterances" in out


def test_recording_conditions_reach_loader_workers_from_their_epoch(setup: dict[str, Path], tmp_path: Path) -> None:
    quiet = ("augment.level_prob=1.0", "augment.level_db=[-30, -30]", "augment.conditions_from_epoch=1")
    trainer = make_trainer(setup, tmp_path, "num_workers=1", *quiet)
    originals = [load_audio(u.audio_filepath, 16000) for u in read_manifest(setup["train"])]

    def level_db(epoch: int) -> float:
        """The epoch's first batch's level against the same utterances as read from their files."""
        trainer.train_data.set_epoch(epoch)
        trainer.waveform_augmentation.set_epoch(epoch)
        batch = next(iter(trainer.loader))  # read by a worker process
        original = torch.cat([originals[i] for i in batch.indices])
        return 10 * torch.log10(batch.waveforms.square().sum() / original.square().sum()).item()

    assert level_db(0) == pytest.approx(0.0, abs=0.01)
    assert level_db(1) == pytest.approx(-30.0, abs=0.1)


def test_config_errors_are_clear(setup: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("optim:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match="unknown keys epoch"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match=r"augment.level_db must be \[low, high\]"):
        load_config(setup["config"], ["augment.level_db=[10, -30]"])
    assert load_config(setup["config"], ["optim.lr=0.5", "model.num_layers=2"]).optim.lr == 0.5
    with pytest.raises(ConfigError, match="num_workers must be auto or a count of processes, not 'two'"):
        load_config(setup["config"], ["num_workers=two"])


def test_loader_workers_leave_the_cpu_to_the_model(setup: dict[str, Path], tmp_path: Path) -> None:
    assert loader_workers("auto", torch.device("cpu")) == 0
    assert 1 <= loader_workers("auto", torch.device("cuda")) <= 8
    assert loader_workers(3, torch.device("cpu")) == 3
    trainer = make_trainer(setup, tmp_path, "num_workers=auto", "device=cpu")
    assert trainer.loader.num_workers == 0
    assert next(iter(trainer.loader)).waveforms.numel() > 0  # read in the trainer's own process


def test_learning_rate_schedule_warms_up_then_decays() -> None:
    factors = [lr_factor(step, 10, 100, 0.1) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize("self_condition", [False, True])
def test_intermediate_ctc_mixes_the_two_losses_and_learns(setup: dict[str, Path], tmp_path: Path, self_condition: bool) -> None:
    """With ``model.inter_ctc_layer`` the loss is (1 - w) final CTC + w layer CTC, and training still learns
    (also with the layer's posteriors conditioning the next, ``model.self_condition``)."""
    trainer = make_trainer(setup, tmp_path, "model.num_layers=2", "model.inter_ctc_layer=1", "optim.inter_ctc_weight=0.4",
                           "optim.epochs=4", f"model.self_condition={str(self_condition).lower()}")
    assert (trainer.model.condition is not None) == self_condition
    batch = next(b for b in trainer.loader if b is not None)
    trainer.model.eval()  # no dropout: the three losses below see the same network
    with torch.no_grad():
        features, frames = trainer.features(batch.waveforms, batch.lengths)
        final, lengths, inter = trainer.model(features, frames, intermediate=True)
        ctc = [trainer.ctc_loss(lp.transpose(0, 1), batch.targets, lengths, batch.target_lengths) / len(batch.indices) for lp in (final, inter)]
        mixed = trainer.loss(batch, augment=False)
    torch.testing.assert_close(mixed, 0.6 * ctc[0] + 0.4 * ctc[1])
    trainer.model.train()
    trainer.run()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    log_probs, _ = load_model(tmp_path / "model.pt").model(features, frames)  # the model file decodes as usual
    assert log_probs.shape == final.shape


def test_confidence_penalty_subtracts_the_output_entropy(setup: dict[str, Path], tmp_path: Path) -> None:
    """With ``optim.confidence_penalty`` the loss is CTC minus the weight times the entropy of the valid frames."""
    trainer = make_trainer(setup, tmp_path, "optim.confidence_penalty=0.2")
    batch = next(b for b in trainer.loader if b is not None)
    trainer.model.eval()  # no dropout: both losses see the same network
    with torch.no_grad():
        features, frames = trainer.features(batch.waveforms, batch.lengths)
        log_probs, lengths = trainer.model(features, frames)
        ctc = trainer.ctc_loss(log_probs.transpose(0, 1), batch.targets, lengths, batch.target_lengths)
        penalized = trainer.loss(batch, augment=False)
    # Entropy by hand, one utterance at a time over its own frames: padding must not count.
    entropy = sum(-(lp[:n].exp() * lp[:n]).sum() for lp, n in zip(log_probs, lengths.tolist()))
    assert lengths.min() < log_probs.size(1) and entropy > 0
    torch.testing.assert_close(output_entropy(log_probs, lengths), entropy)
    torch.testing.assert_close(penalized, (ctc - 0.2 * entropy) / len(batch.indices))
    with pytest.raises(ConfigError, match="confidence_penalty"):
        load_config(setup["config"], ["optim.confidence_penalty=-1"])


def test_intermediate_ctc_weight_must_be_a_share(setup: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="inter_ctc_weight"):
        load_config(setup["config"], ["optim.inter_ctc_weight=1.5"])


def test_moving_average_of_the_weights_is_exact() -> None:
    assert ema_decay(0.999, 0) == pytest.approx(0.1) and ema_decay(0.999, 90) == pytest.approx(0.91)
    assert ema_decay(0.999, 100_000) == 0.999
    average, model = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        average.weight.fill_(1.0)
        model.weight.copy_(torch.tensor([3.0, 5.0, -1.0]))
        model.running_mean.fill_(7.0)
    update_ema(average, model, 0.75)
    assert torch.allclose(average.weight, torch.tensor([1.5, 2.0, 0.5]))  # 0.75 * 1 + 0.25 * new
    assert torch.equal(average.running_mean, model.running_mean)  # buffers are the model's own


def test_moving_average_is_what_is_saved_and_resumed(setup: dict[str, Path], tmp_path: Path) -> None:
    trainer = make_trainer(setup, tmp_path, "optim.epochs=1", "optim.ema_decay=0.9")
    trainer.run()  # a first epoch is always the best so far, so model.pt is written from it
    ema, raw = trainer.ema.state_dict(), trainer.model.state_dict()
    assert any(not torch.equal(ema[k], raw[k]) for k in raw)  # the average lags the weights
    saved_model = load_model(tmp_path / "model.pt").model.state_dict()
    assert all(torch.equal(saved_model[k], ema[k]) for k in ema)  # the average, not the weights trained
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(checkpoint["ema"][k], ema[k]) for k in ema)

    resumed = make_trainer(setup, tmp_path, "optim.epochs=2", "optim.ema_decay=0.9")
    resumed.resume()
    assert all(torch.equal(resumed.ema.state_dict()[k], ema[k]) for k in ema)
    resumed.run()
    assert any(not torch.equal(resumed.ema.state_dict()[k], ema[k]) for k in ema)  # it went on averaging
    with pytest.raises(ConfigError, match="ema_decay"):
        load_config(setup["config"], ["optim.ema_decay=1"])
