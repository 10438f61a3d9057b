"""Does the data pipeline keep up with the model? Training throughput with and without it.

The trainer of a real configuration runs the same epoch's batches twice:

- fed by its own loader: audio read from the files, speed perturbation,
  silence padding and concatenation, in loader worker processes while the
  model trains, or between steps in the trainer's process (``num_workers``;
  ``auto``, the default, has no workers on the CPU) (the full pipeline);
- from batches read beforehand into memory: features, SpecAugment, forward,
  CTC, backward and the optimizer only (the model alone).

Both are timed over the same steps, alternately for a few rounds, and the
medians printed in audio seconds per second of wall time. Issue 5 asks that
the first be within 10% of the second.

    python benchmarks/data_pipeline.py exp/an4/manifests/train.jsonl exp/an4/stats.json [--set num_workers=1]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import tempfile
import time
from collections.abc import Iterator

from asr.data import Batch
from asr.train import Trainer, load_config


def timed_steps(trainer: Trainer, batches: list[Batch] | object, steps: int) -> float:
    """Audio seconds per second over ``steps`` training steps drawn from ``batches``."""
    start, audio = time.perf_counter(), 0.0
    for batch in itertools.islice(batches, steps):
        if batch is None:  # every file of the batch failed to load
            continue
        trainer.train_step([batch], augment=True)
        audio += batch.lengths.sum().item() / trainer.config.features.sample_rate
    return audio / (time.perf_counter() - start)


def trainer_arguments(description: str, rounds: int) -> argparse.Namespace:
    """The command line of a benchmark that times a real configuration's trainer."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("train", help="training manifest")
    parser.add_argument("stats", help="statistics file of the recipe's stage 2")
    parser.add_argument("--config", default="recipes/an4/conf/train.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--steps", type=int, default=60, help="training steps a measurement")
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser.parse_args()


@contextlib.contextmanager
def warm_trainer(args: argparse.Namespace) -> Iterator[Trainer]:
    """A trainer of ``args``' configuration in a throw-away folder, in training mode, warmed up
    (loader workers started, allocator primed) by a few steps."""
    with tempfile.TemporaryDirectory() as exp_dir:
        trainer = Trainer(load_config(args.config, args.set), args.train, None, args.stats, exp_dir)
        trainer.model.train()
        timed_steps(trainer, iter(trainer.loader), 5)
        yield trainer


def main() -> None:
    args = trainer_arguments(__doc__.splitlines()[0], rounds=3)
    with warm_trainer(args) as trainer:
        with_loader, alone = [], []
        for epoch in range(1, args.rounds + 1):
            trainer.train_data.set_epoch(epoch)
            prefetched = list(itertools.islice(trainer.loader, args.steps))
            alone.append(timed_steps(trainer, iter(prefetched), args.steps))
            trainer.train_data.set_epoch(epoch)  # the same batches, now read while the model trains
            with_loader.append(timed_steps(trainer, iter(trainer.loader), args.steps))
            print(f"round {epoch}: full pipeline {with_loader[-1]:.0f}, model alone {alone[-1]:.0f} s of audio per s", flush=True)
    full, model = statistics.median(with_loader), statistics.median(alone)
    print(
        f"median of {args.rounds} rounds of {args.steps} steps: full pipeline {full:.0f}, model alone {model:.0f}"
        f" s of audio per s; the pipeline costs {100 * (1 - full / model):.1f}%"
    )


if __name__ == "__main__":
    main()
