"""Decoding with the kept snapshots' posteriors averaged: a checkpoint ensemble, judged on dev.

Training keeps the weights of the five epochs with the lowest dev WER
(``snapshots/epoch<N>.pt``) and averages them into ``model.pt`` only when the
averaged weights do no worse on dev (README, row G). Averaging the
*posteriors* of those five networks instead (Chen et al. 2017, "Checkpoint
ensembles") needs no weight space in common: each snapshot runs over the
audio, and the CTC frame posteriors are averaged (the mean of the
probabilities, as deepspeech's and ESPnet's model ensembles do). Every
snapshot shares the front end's subsampling, so their frames line up.

    # each model's dev word errors by utterance: greedy voted over speeds, and the LM grid at speed 1
    python benchmarks/snapshot_ensemble.py dump exp/an4_f1 exp/an4_f2 ...
    # model.pt as it is against the ensemble, fold by fold (a fold: its models joined by commas)
    python benchmarks/snapshot_ensemble.py judge exp/an4_z2,exp/an4_z4 exp/an4_f1 ...

The dump writes ``tune/errors_{single,ensemble}_<speeds>.json`` in
``benchmarks/lm_prior.py``'s format, so its leave-one-speaker-out judgement of
stage 5 reads them. Test data is refused, as by stage 5.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from asr.checkpoint import ASRModel, load_model
from asr.cli import speed_list
from asr.decoding import tuned_options
from asr.model import CTCModel
from lm_prior import GREEDY, GRID, Table, dev_utterances, fold_mean, held_out, named, stage5, write_errors
from tune_crossval import voted_grid

VOTED = "voted"  # the key of greedy decoding voted over the speeds


class CTCEnsemble(nn.Module):
    """Several CTC networks of one configuration; the log of their mean frame posteriors."""

    def __init__(self, members: list[CTCModel]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [member(features, lengths) for member in self.members]
        stacked = torch.stack([log_probs for log_probs, _ in outputs])
        return torch.logsumexp(stacked, dim=0) - math.log(len(outputs)), outputs[0][1]


def load_ensemble(exp_dir: Path) -> ASRModel:
    """``model.pt``'s features and vocabulary, with the network replaced by the kept snapshots' ensemble."""
    single = load_model(exp_dir / "model.pt")
    members = []
    for path in sorted((exp_dir / "snapshots").glob("epoch*.pt")):
        member = CTCModel(single.model.config)
        member.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        members.append(member.eval())
    return replace(single, model=CTCEnsemble(members).eval())


def errors_path(exp_dir: Path, kind: str, speeds: list[float]) -> Path:
    return exp_dir / "tune" / f"errors_{kind}_{'_'.join(f'{s:g}' for s in speeds)}.json"


def dump(exp_dir: Path, speeds: list[float]) -> None:
    """Per-utterance dev errors of model.pt and of the ensemble: greedy voted over ``speeds``, the grid at speed 1."""
    utterances = dev_utterances(exp_dir)
    options = tuned_options({"lexicon": True})
    lm = str(exp_dir / "lm.arpa")
    for kind, model in (("single", load_model(exp_dir / "model.pt")), ("ensemble", load_ensemble(exp_dir))):
        references, grid = voted_grid(model, utterances, lm, GRID, options, [1.0])
        _, voted = voted_grid(model, utterances, lm, [None], options, speeds)
        hypotheses = named(grid) | {VOTED: voted[None]}
        out = errors_path(exp_dir, kind, speeds)
        errors = write_errors(out, utterances, references, hypotheses)
        print(f"{out}: greedy {sum(errors[GREEDY].values())}, voted {sum(errors[VOTED].values())} errors", flush=True)


def judge(arguments: list[str], speeds: list[float]) -> None:
    """Greedy (speed 1, voted) and stage 5's leave-one-speaker-out errors, model.pt against the ensemble."""
    for kind in ("single", "ensemble"):
        folds = [[Table(errors_path(Path(d), kind, speeds)) for d in argument.split(",")] for argument in arguments]
        for name, figure in (
            ("greedy", lambda t: t.count(GREEDY, t.utterances())),
            ("greedy voted", lambda t: t.count(VOTED, t.utterances())),
            ("LM held out", lambda t: held_out(t, stage5)),
        ):
            figures = [fold_mean(fold, figure) for fold in folds]
            print(f"{kind:>8} {name:>12}: {sum(figures):7.2f}  ({', '.join(f'{f:g}' for f in figures)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["dump", "judge"])
    parser.add_argument("folders", nargs="+", help="model folders (dump) or folds: model folders joined by commas")
    parser.add_argument("--speeds", type=speed_list, default=[1.0, 0.9, 1.1], help="greedy voting's speeds")
    args = parser.parse_args()
    if args.step == "dump":
        for exp_dir in args.folders:
            dump(Path(exp_dir), args.speeds)
    else:
        judge(args.folders, args.speeds)


if __name__ == "__main__":
    main()
