"""Stage 5 with a default point: keep a cross-validated LM weight unless dev clearly beats it.

Stage 5 picks, of 49 (LM weight, word score) points, the one with the fewest
errors on AN4's 64 dev utterances, and such a choice fits those five
speakers' noise: on speakers it was not tuned on, the tuned LM removes
almost nothing (README, rows AA and AG). The rule judged here keeps a default
point, chosen on other speakers, unless the dev grid's best point makes at
least a fraction ``margin`` of the default's dev errors fewer (and at least
one fewer): the shrinkage of a small sample's estimate towards a prior.

Three steps, each reading what the one before wrote:

    # each model's dev word errors, utterance by utterance, at every grid point (and greedy)
    python benchmarks/lm_prior.py dump exp/an4_f1 exp/an4_f2 ... [--speeds 1,0.9,1.1]
    # the default (fewest errors pooled over folds) and the margin (nested cross-validation)
    python benchmarks/lm_prior.py choose exp/an4_z2,exp/an4_z4 exp/an4_f1 ... [--speeds ...]
    # the rule against stage 5's on new folds, leave-one-speaker-out
    python benchmarks/lm_prior.py judge --default 0.5,1 --margin 0.3 exp/an4_f5 exp/an4_f6 [--speeds ...]

A fold is one argument: its models (the same dev speakers, other seeds)
joined by commas; a fold's figure is the mean over its models. Each model
folder holds ``model.pt``, ``lm.arpa`` and ``manifests/dev.jsonl`` as stage
5 left them; the dump goes to ``tune/errors_<speeds>.json`` beside stage 5's
grid. Test data is refused, as by stage 5.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from pathlib import Path

from asr.checkpoint import load_model
from asr.cli import float_list, speed_list
from asr.data import Utterance, read_manifest, refuse_test_data
from asr.decoding import tuned_options
from asr.scoring import score
from asr.tune import LM_WEIGHTS, WORD_SCORES, GridPoint, Point, best_first
from tune_crossval import by_speaker, voted_grid

Pair = tuple[float, float]  # (LM weight, word score); the letter scale stays 1
MARGINS = [0.0, 0.05, 0.1, 0.2, 0.3]
GREEDY = "greedy"
GRID: list[Point | None] = [None, *((w, s, 1.0) for w, s in itertools.product(LM_WEIGHTS, WORD_SCORES))]  # None: greedy


class Table:
    """One model's dev word errors by utterance at every grid point, and each utterance's speaker."""

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.speakers: dict[str, list[str]] = data["speakers"]
        self.errors: dict[str, dict[str, int]] = data["errors"]  # point key -> utterance -> errors
        self.points: list[Pair] = [parse_key(key) for key in self.errors if "/" in key]  # not greedy

    def count(self, point: Pair | str, utterances: list[str]) -> int:
        errors = self.errors[point if isinstance(point, str) else key(point)]
        return sum(errors[utt_id] for utt_id in utterances)

    def utterances(self, speakers: list[str] | None = None) -> list[str]:
        return [u for s, utts in self.speakers.items() if speakers is None or s in speakers for u in utts]


def key(point: Pair) -> str:
    return f"{point[0]:g}/{point[1]:g}"


def named(hypotheses: dict[Point | None, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``voted_grid``'s decodings under a :class:`Table`'s keys: greedy, or each point's weight and score."""
    return {GREEDY if point is None else key(point[:2]): texts for point, texts in hypotheses.items()}


def parse_key(text: str) -> Pair:
    weight, word_score = text.split("/")
    return float(weight), float(word_score)


def best(points: list[Pair], errors: Callable[[Pair], float]) -> Pair:
    """The point with the fewest errors, ties broken as stage 5 breaks them (:func:`asr.tune.best_first`)."""
    ranked = best_first([GridPoint(w, s, 1.0, wer=errors((w, s)), cer=0.0, word_errors=0) for w, s in points])
    return ranked[0].lm_weight, ranked[0].word_score


def stage5(table: Table, utterances: list[str]) -> Pair:
    """Stage 5 as it is: the grid's best point on these utterances."""
    return best(table.points, lambda p: table.count(p, utterances))


def with_default(default: Pair, margin: float) -> Callable[[Table, list[str]], Pair]:
    """The rule judged: the default unless the best point has ``margin`` of its errors fewer, and one at least."""

    def choose(table: Table, utterances: list[str]) -> Pair:
        candidate = stage5(table, utterances)
        default_errors = table.count(default, utterances)
        gain = default_errors - table.count(candidate, utterances)
        return candidate if gain >= max(1.0, margin * default_errors) else default

    return choose


def held_out(table: Table, choose: Callable[[Table, list[str]], Pair]) -> int:
    """Leave-one-speaker-out errors: each speaker decoded at the point chosen on the others."""
    total = 0
    for speaker in table.speakers:
        others = table.utterances([s for s in table.speakers if s != speaker])
        total += table.count(choose(table, others), table.utterances([speaker]))
    return total


def fold_mean(fold: list[Table], figure: Callable[[Table], float]) -> float:
    return sum(figure(table) for table in fold) / len(fold)


def pooled_default(folds: list[list[Table]]) -> Pair:
    """The point with the fewest dev errors summed over folds (each fold the mean of its models)."""
    points = folds[0][0].points
    return best(points, lambda p: sum(fold_mean(fold, lambda t: t.count(p, t.utterances())) for fold in folds))


def dump_path(exp_dir: str, speeds: list[float]) -> Path:
    return Path(exp_dir) / "tune" / f"errors_{'_'.join(f'{s:g}' for s in speeds)}.json"


def dump(exp_dir: str, speeds: list[float]) -> None:
    """Decode ``exp_dir``'s dev set at every grid point (voted over ``speeds``) and write each utterance's errors."""
    utterances = dev_utterances(Path(exp_dir))
    references, hypotheses = voted_grid(
        load_model(Path(exp_dir) / "model.pt"), utterances, str(Path(exp_dir) / "lm.arpa"), GRID, tuned_options({"lexicon": True}), speeds
    )
    out = dump_path(exp_dir, speeds)
    errors = write_errors(out, utterances, references, named(hypotheses))
    print(f"{out}: {len(references)} utterances, greedy {sum(errors[GREEDY].values())} errors")


def dev_utterances(exp_dir: Path) -> list[Utterance]:
    """A model folder's dev set, as stage 5 left it (test data refused)."""
    manifest = exp_dir / "manifests" / "dev.jsonl"
    utterances = read_manifest(manifest)
    refuse_test_data(manifest, utterances)
    return utterances


def write_errors(
    out: Path, utterances: list[Utterance], references: dict[str, str], hypotheses: dict[str, dict[str, str]]
) -> dict[str, dict[str, int]]:
    """Write each decoding's word errors by utterance (a :class:`Table`'s file), and return them."""
    errors = {
        name: {utt_id: score({utt_id: ref}, {utt_id: texts[utt_id]}).word_errors for utt_id, ref in references.items()}
        for name, texts in hypotheses.items()
    }
    speakers = {name: sorted(refs) for name, refs in by_speaker(utterances, references).items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"speakers": speakers, "errors": errors}))
    return errors


def load_folds(arguments: list[str], speeds: list[float]) -> list[list[Table]]:
    return [[Table(dump_path(exp_dir, speeds)) for exp_dir in argument.split(",")] for argument in arguments]


def choose(arguments: list[str], speeds: list[float]) -> None:
    """Print the pooled default and, for each margin, the nested leave-one-fold-out errors."""
    folds = load_folds(arguments, speeds)
    default = pooled_default(folds)
    print(f"default pooled over {len(folds)} folds: LM weight {default[0]:g}, word score {default[1]:g}")
    rows = {"greedy": [], "stage 5": [], "fixed default": [], **{f"margin {m:g}": [] for m in MARGINS}}
    for k, fold in enumerate(folds):
        fold_default = pooled_default(folds[:k] + folds[k + 1 :])
        rows["greedy"].append(fold_mean(fold, lambda t: t.count(GREEDY, t.utterances())))
        rows["stage 5"].append(fold_mean(fold, lambda t: held_out(t, stage5)))
        rows["fixed default"].append(fold_mean(fold, lambda t: t.count(fold_default, t.utterances())))
        for m in MARGINS:
            rows[f"margin {m:g}"].append(fold_mean(fold, lambda t: held_out(t, with_default(fold_default, m))))
        print(f"fold {k} ({arguments[k]}): default from the other folds {key(fold_default)}")
    for name, figures in rows.items():
        print(f"{name:>14}: {sum(figures):7.2f}  ({', '.join(f'{f:g}' for f in figures)})")
    margin = min(MARGINS, key=lambda m: (round(sum(rows[f"margin {m:g}"]), 6), -m))
    print(f"margin chosen (fewest held-out errors, ties to the larger): {margin:g}")


def judge(arguments: list[str], speeds: list[float], default: Pair, margin: float) -> None:
    """Print greedy, stage 5's and the rule's leave-one-speaker-out errors on each fold."""
    folds = load_folds(arguments, speeds)
    rows = {
        "greedy": [fold_mean(f, lambda t: t.count(GREEDY, t.utterances())) for f in folds],
        "stage 5": [fold_mean(f, lambda t: held_out(t, stage5)) for f in folds],
        f"default {key(default)}, margin {margin:g}": [
            fold_mean(f, lambda t: held_out(t, with_default(default, margin))) for f in folds
        ],
    }
    for name, figures in rows.items():
        print(f"{name:>28}: {sum(figures):7.2f}  ({', '.join(f'{f:g}' for f in figures)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["dump", "choose", "judge"])
    parser.add_argument("folders", nargs="+", help="model folders (dump) or folds: model folders joined by commas")
    parser.add_argument("--speeds", type=speed_list, default=[1.0], help="decode at each and vote, as stage 6 votes greedy")
    parser.add_argument("--default", type=float_list, help="judge: LM weight,word score")
    parser.add_argument("--margin", type=float, help="judge: the fraction of the default's errors to beat it by")
    args = parser.parse_args()
    if args.step == "dump":
        for exp_dir in args.folders:
            dump(exp_dir, args.speeds)
    elif args.step == "choose":
        choose(args.folders, args.speeds)
    else:
        if args.default is None or len(args.default) != 2 or args.margin is None:
            parser.error("judge needs --default WEIGHT,SCORE and --margin")
        judge(args.folders, args.speeds, (args.default[0], args.default[1]), args.margin)


if __name__ == "__main__":
    main()
