"""What asr's CPU dropout and fused AdamW save, in the real trainer's steps.

One trainer of a real configuration runs the same batches (full data pipeline)
alternately with two sets of parts, swapped in place, so that both see the same
machine at the same time (the 2-core machines drift by 10% or more within minutes):

- torch's defaults: ``nn.Dropout`` (its CPU mask drawn with ``bernoulli_``) and
  the for-loop ``AdamW`` (a dozen small operations per parameter);
- asr's: ``asr.model.Dropout`` (the mask drawn with ``rand``) and the fused ``AdamW``
  that ``asr.train.build_optimizer`` makes.

Prints each round's throughput and the medians, in audio seconds per second.

    python benchmarks/cpu_step.py exp/an4/manifests/train.jsonl exp/an4/stats.json [--steps 60 --rounds 6]
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

from asr.model import Dropout
from data_pipeline import timed_steps, trainer_arguments, warm_trainer  # this folder's: the trainer's steps, timed


def main() -> None:
    args = trainer_arguments(__doc__.splitlines()[0], rounds=6)
    with warm_trainer(args) as trainer:
        config = trainer.config
        # The learning-rate schedule drives only the trainer's optimizer; a step costs the same either way.
        for_loop_adamw = torch.optim.AdamW(trainer.model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
        parts = {
            "torch": (nn.Dropout(config.model.dropout), for_loop_adamw),
            "asr": (Dropout(config.model.dropout), trainer.optimizer),
        }
        results: dict[str, list[float]] = {name: [] for name in parts}
        for round_ in range(1, args.rounds + 1):
            for name in sorted(parts, reverse=round_ % 2 == 0):  # alternate which goes first
                dropout, optimizer = parts[name]
                trainer.model.dropout = trainer.model.lstm.dropout = dropout
                trainer.optimizer = optimizer
                trainer.train_data.set_epoch(round_)  # the same batches for both
                results[name].append(timed_steps(trainer, iter(trainer.loader), args.steps))
            print(f"round {round_}: " + ", ".join(f"{name} {results[name][-1]:.1f}" for name in parts), flush=True)
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(
        f"median of {args.rounds} rounds of {args.steps} steps: torch's parts {medians['torch']:.1f}, asr's"
        f" {medians['asr']:.1f} s of audio per s ({100 * (medians['asr'] / medians['torch'] - 1):+.1f}%)"
    )


if __name__ == "__main__":
    main()
