"""Training: CTC loss, AdamW with warm-up and cosine decay, a checkpoint every epoch.

Everything a run makes goes into its experiment folder:

- ``checkpoint.pt``: the full training state after the last finished epoch
  (``--resume`` continues from it);
- ``model.pt``: the self-contained model file of the best epoch by dev WER
  (with ``optim.ema_decay``, of the weights' moving average at that epoch);
- ``metrics.jsonl``: one line an epoch; ``curves.png``: loss and dev WER;
- ``config.yaml``: the configuration the run used.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr import distributed
from asr.augment import AugmentConfig, SpecAugment, WaveformAugmentation
from asr.checkpoint import ASRModel, atomic_save, save_model
from asr.data import (
    Batch,
    BucketBatchSampler,
    ManifestError,
    SpeechDataset,
    collate,
    encodable,
    read_manifest,
)
from asr.features import FeatureConfig, FeatureExtractor, valid_frames
from asr.model import CTCModel, ModelConfig
from asr.scoring import score
from asr.shards import ShardSource, is_shards
from asr.streaming import ManifestSource, StreamConfig, StreamingDataset
from asr.text import Tokenizer
from asr.transcribe import decode_utterances


@dataclass
class OptimConfig:
    epochs: int = 60
    max_batch_frames: int = 20000  # padded feature frames (10 ms each) per batch
    lr: float = 2e-3
    warmup_steps: int = 300
    final_lr_ratio: float = 0.02  # the cosine decays to lr * final_lr_ratio
    weight_decay: float = 1e-2
    grad_clip: float = 5.0
    sortagrad_epochs: int = 1  # epochs whose batches come shortest first
    average_best: int = 0  # at the end, average the weights of this many best epochs by dev WER
    accumulate_grad: int = 1  # batches per optimizer step (per rank): a larger step without the memory
    inter_ctc_weight: float = 0.3  # with model.inter_ctc_layer: loss = (1 - w) final CTC + w intermediate CTC
    ema_decay: float = 0.0  # evaluate and keep an exponential moving average of the weights (0: the weights)
    # Confidence penalty (Pereyra et al., 2017): subtract this times the output's entropy, summed over
    # each utterance's frames, from its CTC loss, against the peaky posteriors that leave an LM little to weigh.
    confidence_penalty: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.inter_ctc_weight <= 1:
            raise ValueError(f"inter_ctc_weight must lie between 0 and 1, not {self.inter_ctc_weight}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1), not {self.ema_decay}")
        if self.confidence_penalty < 0:
            raise ValueError(f"confidence_penalty must not be negative, not {self.confidence_penalty}")


@dataclass
class TrainConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    seed: int = 1
    num_workers: int | str = "auto"  # loader worker processes; auto: see loader_workers
    device: str = "auto"  # auto: CUDA when available
    precision: str = "auto"  # auto: bf16 (or fp16 with loss scaling) on CUDA, fp32 on CPU

    def __post_init__(self) -> None:
        workers = self.num_workers
        if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
            raise ValueError(f"num_workers must be auto or a count of processes, not {workers!r}")


def output_entropy(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Entropy of each frame's output distribution, summed over the valid frames of a ``(batch, frames, vocab)`` batch."""
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
    return (entropy * valid_frames(lengths.to(entropy.device), entropy.size(1))).sum()


class ConfigError(ValueError):
    """A configuration file with unknown keys or wrong values."""


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """A dataclass from a dictionary, refusing keys it does not have."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML configuration; ``overrides`` like ``optim.epochs=2`` replace single values."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read configuration ({error})") from None
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"override {override!r} is not of the form section.key=value")
        *sections, last = key.split(".")
        node = values
        for section in sections:
            node = node.setdefault(section, {})
        node[last] = yaml.safe_load(value)
    try:
        return _build(TrainConfig, values, str(path))
    except (TypeError, ValueError) as error:  # wrong types, or values a section's __post_init__ refuses
        raise ConfigError(f"{path}: {error}") from None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def loader_workers(setting: int | str, device: torch.device) -> int:
    """How many loader worker processes ``num_workers`` asks for on ``device``.

    ``auto`` gives none on the CPU: the model's threads already take every
    core, and a worker process only interrupts them, which stalls the rest of
    each parallel step too. Reading, perturbing and joining audio between steps
    in the trainer's own process costs less (on a 2-core CPU: 5% of training
    throughput, against 11 to 16% from one worker process). Beside a GPU the
    workers prepare batches while it computes: up to 8 per training process.
    """
    if setting != "auto":
        return int(setting)
    if device.type == "cpu":
        return 0
    return max(1, min(8, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full float32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "bf16" or (precision == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def build_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel: one pass over all parameters instead of a dozen small
    operations each. On a 2-core CPU the AN4 model's optimizer step went from 13-22 ms to 3 ms,
    and its whole training step ran 6.5% faster (``benchmarks/NOTES.md``). The update is the
    same up to rounding (weights 1.5e-8 apart after 50 steps)."""
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)


def lr_factor(step: int, warmup: int, total: int, final_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``final_ratio`` at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def ema_decay(decay: float, step: int) -> float:
    """The moving average's decay after ``step`` updates: ``decay``, lower at first.

    Polyak averaging as in TensorFlow's ``ExponentialMovingAverage`` with
    ``num_updates``: min(decay, (1 + step) / (10 + step)), so the average is
    not dominated for thousands of steps by the random initial weights.
    """
    return min(decay, (1 + step) / (10 + step))


def emitted_frames(features: FeatureConfig, model: ModelConfig, samples: int | torch.Tensor) -> int | torch.Tensor:
    """How many frames the model emits for waveforms of ``samples``: the features' and the
    subsampling's arithmetic, so that the CTC loss gets them from the host without asking the device."""
    return model.output_frames(features.num_frames(samples))


@torch.no_grad()
def update_ema(average: torch.nn.Module, model: torch.nn.Module, decay: float | torch.Tensor) -> None:
    """average <- decay * average + (1 - decay) * model, parameter by parameter; buffers are copied.

    ``decay`` may be a tensor on the device (1 leaves the average as it is), so that a step's
    outcome can decide it without the host waiting for the device."""
    torch._foreach_lerp_(list(average.parameters()), list(model.parameters()), 1 - decay)
    for kept, current in zip(average.buffers(), model.buffers()):
        kept.copy_(current)


def load_stats(path: str | Path) -> dict[str, Any]:
    """The statistics file written by ``asr stats``: mean, std, vocabulary."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


class Trainer:
    """One training run in one experiment folder."""

    def __init__(
        self,
        config: TrainConfig,
        train_manifest: str | Path,
        dev_manifest: str | Path | None,
        stats_path: str | Path,
        exp_dir: str | Path,
    ) -> None:
        self.config = config
        self.exp_dir = Path(exp_dir)
        self.dist, self.device = distributed.setup(resolve_device(config.device))
        self.amp_dtype = autocast_dtype(config.precision, self.device)
        random.seed(config.seed)
        torch.manual_seed(config.seed)  # the same initial weights on every rank

        stats = load_stats(stats_path)
        self.tokenizer = Tokenizer(stats["vocabulary"])
        if config.augment.concat_prob > 0 and " " not in self.tokenizer.vocabulary:
            raise ConfigError("augment.concat_prob needs a space in the vocabulary to join transcripts")
        config.model.input_dim = config.features.n_mels
        config.model.vocab_size = len(self.tokenizer)
        self.features = FeatureExtractor(config.features)
        self.features.set_stats(torch.tensor(stats["mean"]), torch.tensor(stats["std"]))
        self.model = CTCModel(config.model)
        self.features.to(self.device)
        self.model.to(self.device)
        self.specaugment = SpecAugment(config.augment).to(self.device)
        # The weights evaluated, kept and saved: with optim.ema_decay their moving average
        # (Polyak averaging), which smooths the noise of small-batch steps; else the weights.
        self.ema = None
        if config.optim.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).requires_grad_(False)  # draws no random numbers
        self.ddp = self.model
        if self.dist.enabled:
            self.ddp = DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
            torch.manual_seed(config.seed + self.dist.rank)  # but each rank its own augmentation

        self.dev_set = read_manifest(dev_manifest) if dev_manifest else []
        self.waveform_augmentation = WaveformAugmentation(config.augment, config.features.sample_rate)
        self.loader, self.train_data, self.batches_per_epoch, self.train_utterances = self.training_data(train_manifest)
        self.optimizer = build_optimizer(self.model, config.optim)
        total_steps = config.optim.epochs * (self.batches_per_epoch // config.optim.accumulate_grad)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(step, config.optim.warmup_steps, total_steps, config.optim.final_lr_ratio),
        )
        self.scaler = torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16)
        self.ctc_loss = torch.nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
        self.epoch = 0
        self.step = 0
        self.best_wer = math.inf
        self.nonfinite = torch.zeros((), dtype=torch.long, device=self.device)  # steps skipped, counted on the device
        self.snapshots: list[tuple[float, int]] = []  # (dev WER, epoch) of the weights kept for averaging
        self.averaged = False

    def output_frames(self, seconds: float) -> int:
        """How many frames the model emits for ``seconds`` of audio."""
        return emitted_frames(self.config.features, self.config.model, int(round(seconds * self.config.features.sample_rate)))

    @property
    def nonfinite_steps(self) -> int:
        """Steps skipped for a non-finite gradient (reading it waits for the device)."""
        return int(self.nonfinite)

    def training_data(self, train: str | Path) -> tuple[DataLoader, BucketBatchSampler | StreamingDataset, int, int]:
        """The loader of training batches, what takes the epoch number, batches an epoch (this rank's), utterances.

        A manifest is read whole and batched by :class:`BucketBatchSampler`
        (exact, global bucketing); a folder of shards, or a manifest with
        ``stream.enabled``, is streamed (:mod:`asr.streaming`: bounded memory,
        batches from a chunk at a time).
        """
        config = self.config
        hop = config.features.hop_ms / 1000
        workers = loader_workers(config.num_workers, self.device)
        loader_options = {
            "num_workers": workers,
            "pin_memory": self.device.type == "cuda",
            "worker_init_fn": _single_thread_worker,
            # Workers are started anew each epoch: they take the dataset, and so
            # the epoch of the augmentation and of a streamed dataset, as it is then.
            "persistent_workers": False,
        }
        if is_shards(train) or config.stream.enabled:
            source = ShardSource(train, config.stream.shuffle_shards, config.seed) if is_shards(train) else ManifestSource(train)
            parts = self.dist.world_size * max(1, workers)
            if isinstance(source, ShardSource) and len(source.shards) < parts:
                raise ConfigError(
                    f"{train}: {len(source.shards)} shards for {parts} readers ({self.dist.world_size} ranks x"
                    f" {max(1, workers)} workers); pack it again with fewer --utterances-per-shard"
                )
            dataset = StreamingDataset(
                source, config.stream, self.tokenizer, config.features.sample_rate, config.optim.max_batch_frames, hop,
                self.output_frames, self.waveform_augmentation, config.augment.concat_prob, config.seed, self.dist.rank, self.dist.world_size,
            )
            batches = source.size.batches(config.optim.max_batch_frames, hop, config.augment.concat_prob) // self.dist.world_size
            loader = DataLoader(dataset, batch_size=None, **loader_options)
            return loader, dataset, max(1, batches), source.size.utterances

        utterances, problems = encodable(read_manifest(train), self.tokenizer, self.output_frames)
        for problem in problems:
            self.log(f"warning: left out of training: {problem}")
        if problems:
            self.log(f"left out {len(problems)} of {len(utterances) + len(problems)} training utterances")
        if not utterances:
            raise ManifestError(f"{train}: no usable training utterances")
        sampler = BucketBatchSampler(
            [int(u.duration / hop) for u in utterances],
            config.optim.max_batch_frames,
            seed=config.seed,
            sorted_epochs=config.optim.sortagrad_epochs,
            concat_prob=config.augment.concat_prob,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            batches_per_step=config.optim.accumulate_grad,
        )
        dataset = SpeechDataset(utterances, self.tokenizer, config.features.sample_rate, self.waveform_augmentation)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, **loader_options)
        return loader, sampler, len(sampler), len(utterances)

    # -- state ---------------------------------------------------------------

    @property
    def evaluated(self) -> CTCModel:
        """The model whose dev WER is measured and which is saved: the moving average if there is one."""
        return self.model if self.ema is None else self.ema

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_wer": self.best_wer,
            "nonfinite_steps": self.nonfinite_steps,
            "snapshots": self.snapshots,
            "averaged": self.averaged,
            "rng": torch.get_rng_state(),
            "config": asdict(self.config),
        }

    def resume(self) -> None:
        """Continue from ``checkpoint.pt``: the epochs it finished are not run again."""
        saved = torch.load(self.exp_dir / "checkpoint.pt", map_location=self.device, weights_only=True)
        self.model.load_state_dict(saved["model"])
        if self.ema is not None:  # a run that had none starts its average from the weights
            self.ema.load_state_dict(saved.get("ema") or saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        self.epoch, self.step = saved["epoch"], saved["step"]
        self.best_wer = saved["best_wer"]
        self.nonfinite.fill_(saved["nonfinite_steps"])
        self.snapshots, self.averaged = [tuple(s) for s in saved["snapshots"]], saved["averaged"]
        torch.set_rng_state(saved["rng"].cpu())
        if self.dist.enabled:  # the checkpoint holds rank 0's random state; the others draw their own
            torch.manual_seed(self.config.seed + self.dist.rank + 7919 * self.epoch)
        metrics = self.exp_dir / "metrics.jsonl"
        if metrics.exists() and self.dist.is_main:  # drop lines of an epoch that ended after its checkpoint
            kept = [l for l in metrics.read_text().splitlines() if json.loads(l)["epoch"] <= self.epoch]
            metrics.write_text("".join(line + "\n" for line in kept))
        self.log(f"resumed from {self.exp_dir / 'checkpoint.pt'} after epoch {self.epoch}")

    def log(self, message: str) -> None:
        """Print on rank 0 only, so that N processes do not say everything N times."""
        if self.dist.is_main:
            print(message, flush=True)

    def asr_model(self, model: CTCModel | None = None, **info: Any) -> ASRModel:
        info = {"epoch": self.epoch, "config": asdict(self.config), **info}
        return ASRModel(self.features, model or self.evaluated, self.tokenizer, info)

    # -- the loop ------------------------------------------------------------

    def train_step(self, batches: list[Batch], augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step over ``batches`` (``optim.accumulate_grad`` of them; under DDP, this rank's).

        Each batch's loss is its mean per utterance, divided by the number of
        batches, so a step's gradient is the mean over its batches (and DDP
        averages it over ranks): N ranks, or N accumulated batches on one
        process, make the same update. A non-finite loss makes the gradient
        non-finite on every rank alike, so all ranks skip that step together.

        Nothing here waits for the device, so on a GPU the host queues the
        next step while this one runs: a step with a non-finite gradient is
        skipped by the fused AdamW itself (``found_inf``, as the fp16 loss
        scaler has it do), leaving weights, optimizer state and moving average
        as they were, and is counted on the device. The learning-rate schedule
        counts it as a step. Returns the step's loss and whether it was
        applied, both on the device: reading them waits for it.
        """
        total = torch.zeros((), device=self.device)
        for index, batch in enumerate(batches):
            last = index == len(batches) - 1
            with self.ddp.no_sync() if self.dist.enabled and not last else contextlib.nullcontext():
                loss = self.loss(batch, augment) / len(batches)
                self.scaler.scale(loss).backward()
            total += loss.detach()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        applied = torch.isfinite(grad_norm)
        self.nonfinite += ~applied
        self.optimizer.found_inf = (~applied).float()  # with fp16 the scaler sets its own, which covers this
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        if self.ema is not None:
            decay = ema_decay(self.config.optim.ema_decay, self.step)
            update_ema(self.ema, self.model, torch.where(applied, decay, 1.0))
        return total, applied

    def loss(self, batch: Batch, augment: bool) -> torch.Tensor:
        """CTC loss of a batch, summed per utterance and averaged over utterances."""
        # Pinned on a GPU (the loader's pin_memory), so the copies do not wait for the device either.
        waveforms = batch.waveforms.to(self.device, non_blocking=True)
        lengths = batch.lengths.to(self.device, non_blocking=True)
        targets = batch.targets.to(self.device, non_blocking=True)
        features, frames = self.features(waveforms, lengths)
        if augment:
            features = self.specaugment(features)
        intermediate = self.config.model.inter_ctc_layer > 0
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            log_probs, frames_on_device, *tapped = self.ddp(features, frames, intermediate=intermediate)
        # CTC in float32 whatever the autocast (log_probs already are), summed per utterance. The
        # frame counts the model also returns are on the device; the CTC loss wants them on the host.
        out_lengths = emitted_frames(self.config.features, self.config.model, batch.lengths)
        loss = self.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, batch.target_lengths)
        if intermediate:
            weight = self.config.optim.inter_ctc_weight
            inter = self.ctc_loss(tapped[0].transpose(0, 1), targets, out_lengths, batch.target_lengths)
            loss = (1 - weight) * loss + weight * inter
        if self.config.optim.confidence_penalty:
            loss = loss - self.config.optim.confidence_penalty * output_entropy(log_probs, frames_on_device)
        return loss / len(batch.indices)

    def steps(self) -> Iterator[list[Batch]]:
        """This epoch's batches, ``optim.accumulate_grad`` at a time.

        A batch whose files all failed to load is None; it is left out, and a
        step left with no batch at all is skipped on one process, while under
        DDP it is made of the last good batch again so that every rank takes
        part in the gradient exchange. Before each step the ranks agree that
        all of them still have batches: streamed parts differ in length, and
        the epoch ends for every rank when the first runs out.
        """
        batches = iter(self.loader)
        last_good: Batch | None = None
        while True:
            group: list[Batch] = []
            exhausted = False
            for _ in range(self.config.optim.accumulate_grad):
                batch = next(batches, _END)
                if batch is _END:
                    exhausted = True
                    break
                if batch is not None:
                    group.append(batch)
                    last_good = batch
            if not distributed.all_have(not exhausted, self.dist):
                return
            if not group and self.dist.enabled and last_good is not None:
                group = [last_good]
            if group:
                yield group

    def run(self) -> None:
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            (self.exp_dir / "config.yaml").write_text(yaml.safe_dump(asdict(self.config), sort_keys=False))
        ranks = f" on each of {self.dist.world_size} processes" if self.dist.enabled else ""
        self.log(
            f"training {self.model.num_parameters() / 1e6:.2f} M parameters on {self.device}"
            f" ({self.amp_dtype or torch.float32}), {self.train_utterances} utterances,"
            f" {self.batches_per_epoch} batches an epoch{ranks}"
        )
        run_start = time.perf_counter()
        while self.epoch < self.config.optim.epochs:
            self.train_data.set_epoch(self.epoch)
            self.waveform_augmentation.set_epoch(self.epoch)
            augment = self.epoch >= self.config.augment.specaugment_from_epoch
            self.model.train()
            start = time.perf_counter()
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)  # applied steps', read at the end
            loss_count = torch.zeros((), dtype=torch.long, device=self.device)
            audio_seconds = 0.0
            bar = tqdm(
                self.steps(),
                desc=f"epoch {self.epoch + 1}/{self.config.optim.epochs}",
                leave=False,
                disable=None if self.dist.is_main else True,
            )
            for batches in bar:
                loss, applied = self.train_step(batches, augment)
                audio_seconds += sum(b.lengths.sum().item() for b in batches) / self.config.features.sample_rate
                loss_sum += torch.where(applied, loss, 0.0)
                loss_count += applied
                if not bar.disable:  # the progress bar's loss is the one read of a step that waits for the device
                    bar.set_postfix(loss=f"{loss.item():.2f}")
            losses = [loss_sum.item(), loss_count.item()]  # waits for the epoch's last step, so before the clock
            train_seconds = time.perf_counter() - start
            loss_sum, loss_count, audio_seconds = distributed.sum_over_ranks([*losses, audio_seconds], self.dist, self.device)
            self.epoch += 1
            record = {
                "epoch": self.epoch,
                "step": self.step,
                "lr": self.scheduler.get_last_lr()[0],
                "train_loss": loss_sum / max(1, loss_count),
                "train_seconds": round(train_seconds, 2),
                "throughput": round(audio_seconds / train_seconds, 1),  # audio s per wall s, all ranks
                "nonfinite_steps": self.nonfinite_steps,
            }
            if self.dist.is_main:  # the others wait: evaluation and writing are rank 0's
                record.update(self.evaluate())
                record["elapsed"] = round(time.perf_counter() - run_start, 1)
                self.save(record)
            distributed.barrier(self.dist)
            self.log(
                f"epoch {self.epoch}: loss {record['train_loss']:.3f}, dev WER {record.get('dev_wer', float('nan')):.2f}%,"
                f" {record['throughput']:.0f} s of audio per s, {train_seconds:.1f} s"
            )
        if len(self.snapshots) > 1 and not self.averaged and self.dist.is_main:
            self.average_snapshots()
        self.ddp = self.model  # DDP's reducer must go before its process group, or the exit may abort
        distributed.teardown(self.dist)

    def evaluate(self, model: CTCModel | None = None) -> dict[str, float]:
        """Greedy dev WER and CER of the model being trained, or of ``model``."""
        if not self.dev_set:
            return {}
        result = decode_utterances(self.asr_model(model), self.dev_set)
        refs = {u.utt_id: u.text for u in self.dev_set if u.utt_id in result.hypotheses}
        scores = score(refs, result.hypotheses)
        return {"dev_wer": round(scores.wer, 2), "dev_cer": round(scores.cer, 2)}

    def save(self, record: dict[str, Any]) -> None:
        """Snapshot, checkpoint, best model, then the metrics line: a crash in between loses nothing."""
        dev_wer = record.get("dev_wer", -self.epoch)  # with no dev set, the last epoch is the best
        improved = dev_wer < self.best_wer
        if improved:
            self.best_wer = dev_wer
        if "dev_wer" in record:
            self.keep_snapshot(dev_wer)
        atomic_save(self.state(), self.exp_dir / "checkpoint.pt")
        if improved:
            save_model(self.exp_dir / "model.pt", self.asr_model(**_dev_info(record)))
        record["best"] = improved
        with (self.exp_dir / "metrics.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        plot_curves(self.exp_dir / "metrics.jsonl", self.exp_dir / "curves.png")

    # -- averaging the best epochs ---------------------------------------------

    def snapshot_path(self, epoch: int) -> Path:
        return self.exp_dir / "snapshots" / f"epoch{epoch}.pt"

    def keep_snapshot(self, dev_wer: float) -> None:
        """Keep this epoch's weights if it is among the ``average_best`` best so far."""
        keep = self.config.optim.average_best
        if keep < 2:
            return
        self.snapshots.append((dev_wer, self.epoch))
        self.snapshots.sort()
        if (dev_wer, self.epoch) in self.snapshots[:keep]:
            atomic_save(self.evaluated.state_dict(), self.snapshot_path(self.epoch))
        for _, epoch in self.snapshots[keep:]:
            self.snapshot_path(epoch).unlink(missing_ok=True)
        self.snapshots = self.snapshots[:keep]

    def average_snapshots(self) -> None:
        """Average the kept weights; the average replaces ``model.pt`` only if its dev WER is no worse."""
        epochs = sorted(epoch for _, epoch in self.snapshots)
        states = [torch.load(self.snapshot_path(e), map_location=self.device, weights_only=True) for e in epochs]
        averaged = CTCModel(self.config.model).to(self.device)
        averaged.load_state_dict({k: sum(s[k] for s in states) / len(states) for k in states[0]})
        record = self.evaluate(averaged)
        verdict = "kept" if record["dev_wer"] <= self.best_wer else "not kept"
        print(
            f"average of epochs {epochs}: dev WER {record['dev_wer']:.2f}%"
            f" (best single epoch {self.best_wer:.2f}%): {verdict}"
        )
        if record["dev_wer"] <= self.best_wer:
            self.best_wer = record["dev_wer"]
            save_model(self.exp_dir / "model.pt", self.asr_model(averaged, averaged_epochs=epochs, **_dev_info(record)))
        (self.exp_dir / "average.json").write_text(json.dumps({"epochs": epochs, **record, "kept": verdict == "kept"}) + "\n")
        self.averaged = True
        atomic_save(self.state(), self.exp_dir / "checkpoint.pt")


def _dev_info(record: dict[str, Any]) -> dict[str, float]:
    return {k: record[k] for k in ("dev_wer", "dev_cer") if k in record}


_END = object()  # the end of an epoch's batches (None is a batch whose files all failed)


def _single_thread_worker(_: int) -> None:
    """Loader workers only read audio: one thread each leaves the cores to the model."""
    torch.set_num_threads(1)


def plot_curves(metrics_path: Path, png_path: Path) -> None:
    """Training loss and dev WER against the epoch, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    epochs = [r["epoch"] for r in records]
    figure, loss_axis = plt.subplots(figsize=(7, 4))
    loss_axis.plot(epochs, [r["train_loss"] for r in records], color="tab:blue", label="train loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("CTC loss per utterance", color="tab:blue")
    if any("dev_wer" in r for r in records):
        wer_axis = loss_axis.twinx()
        wer_axis.plot(epochs, [r.get("dev_wer") for r in records], color="tab:red", label="dev WER")
        wer_axis.set_ylabel("dev WER (%)", color="tab:red")
        wer_axis.set_ylim(0, min(100, max(r.get("dev_wer", 0) for r in records) * 1.05 + 1))
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
