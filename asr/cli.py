"""The ``asr`` command: train, decode, score and transcribe, plus ``stats`` for the recipes.

A user's mistake (a missing file, unreadable audio, a bad configuration) ends
in one line on standard error and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from torch.utils.data import DataLoader

from asr.audio import AudioError
from asr.checkpoint import ModelFileError, load_model
from asr.data import ManifestError, SpeechDataset, collate, read_manifest
from asr.features import FeatureExtractor, accumulate_stats
from asr.scoring import ScoringError, read_transcripts, score, write_details
from asr.text import Tokenizer
from asr.train import ConfigError, Trainer, load_config, resolve_device
from asr.transcribe import decode_utterances, transcribe_files

USER_ERRORS = (AudioError, ConfigError, ManifestError, ModelFileError, ScoringError, FileNotFoundError)


def cmd_stats(args: argparse.Namespace) -> int:
    """Global feature mean/std and the character vocabulary of a training manifest."""
    config = load_config(args.config, args.set or [])
    utterances = read_manifest(args.manifest)
    extractor = FeatureExtractor(config.features)
    dataset = SpeechDataset(utterances, None, config.features.sample_rate)
    batches = (
        (batch.waveforms, batch.lengths)
        for batch in DataLoader(dataset, batch_size=32, collate_fn=collate, num_workers=args.num_workers)
        if batch is not None
    )
    try:
        mean, std, frames = accumulate_stats(extractor, batches)
    except ValueError:
        raise ManifestError(f"{args.manifest}: no readable audio to compute statistics from") from None
    tokenizer = Tokenizer.from_texts(u.text for u in utterances)
    stats = {"mean": mean.tolist(), "std": std.tolist(), "frames": frames, "vocabulary": tokenizer.vocabulary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stats) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {frames} frames from {len(utterances)} utterances, vocabulary of {len(tokenizer)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.set or [])
    exp_dir = Path(args.exp_dir)
    if (exp_dir / "checkpoint.pt").exists() and not args.resume:
        raise ConfigError(f"{exp_dir / 'checkpoint.pt'} exists: pass --resume to continue it, or choose another --exp-dir")
    trainer = Trainer(config, args.train, args.dev, args.stats, exp_dir)
    if args.resume and (exp_dir / "checkpoint.pt").exists():
        trainer.resume()
    trainer.run()
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    """Greedy-decode a manifest into ``hyp.txt`` and ``ref.txt`` (Kaldi style), reporting speed."""
    model = load_model(args.model, resolve_device(args.device))
    utterances = read_manifest(args.manifest)
    result = decode_utterances(model, utterances, args.max_batch_frames)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    decoded = [u for u in utterances if u.utt_id in result.hypotheses]
    (out_dir / "hyp.txt").write_text("".join(f"{u.utt_id} {result.hypotheses[u.utt_id]}\n" for u in decoded))
    (out_dir / "ref.txt").write_text("".join(f"{u.utt_id} {u.text}\n" for u in decoded))
    failed = len(utterances) - len(decoded)
    print(
        f"decoded {len(decoded)} utterances ({result.audio_seconds:.1f} s of audio) into {out_dir} in"
        f" {result.wall_seconds:.1f} s: real-time factor {result.real_time_factor:.4f}"
        f" ({1 / max(result.real_time_factor, 1e-9):.0f}x real time)" + (f"; {failed} unreadable" if failed else "")
    )
    return 1 if failed else 0


def cmd_score(args: argparse.Namespace) -> int:
    references = read_transcripts(args.ref)
    hypotheses = read_transcripts(args.hyp)
    scores = score(references, hypotheses)
    if args.details_dir:
        write_details(args.details_dir, references, hypotheses, scores)
    if args.results:
        results_path = Path(args.results)
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[args.name] = {"wer": round(scores.wer, 2), "cer": round(scores.cer, 2), "utterances": scores.utterances}
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    label = f"{args.name}: " if args.name else ""
    print(
        f"{label}WER {scores.wer:.2f}% ({scores.word_errors}/{scores.words} words),"
        f" CER {scores.cer:.2f}% ({scores.char_errors}/{scores.characters} characters),"
        f" {scores.utterances} utterances"
    )
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    model = load_model(args.model, resolve_device(args.device))
    failures = 0
    for path, result in transcribe_files(model, args.audio, args.batch_size):
        if isinstance(result, AudioError):
            failures += 1
            print(f"error: {result}", file=sys.stderr, flush=True)
        else:
            print(f"{path}\t{result}", flush=True)
    if failures:
        print(f"error: {failures} of {len(args.audio)} files could not be transcribed", file=sys.stderr)
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train a model from manifests")
    p.add_argument("--config", required=True, help="training configuration (YAML)")
    p.add_argument("--train", required=True, help="training manifest (JSON lines)")
    p.add_argument("--dev", help="dev manifest: picks the best epoch by WER")
    p.add_argument("--stats", required=True, help="statistics file from 'asr stats'")
    p.add_argument("--exp-dir", required=True, help="experiment folder for checkpoints, metrics and model.pt")
    p.add_argument("--resume", action="store_true", help="continue from EXP_DIR/checkpoint.pt if there is one")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. optim.epochs=2")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("stats", help="feature mean/std and vocabulary of a training manifest")
    p.add_argument("--config", required=True, help="training configuration (its feature settings are used)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True, help="where to write the statistics (JSON)")
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, as for 'asr train'")
    p.set_defaults(run=cmd_stats)

    p = commands.add_parser("decode", help="greedy-decode a manifest into hyp.txt and ref.txt")
    p.add_argument("model", help="model file (model.pt)")
    p.add_argument("manifest")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--max-batch-frames", type=int, default=40000)
    p.add_argument("--device", default="auto")
    p.set_defaults(run=cmd_decode)

    p = commands.add_parser("score", help="WER and CER of hypotheses against references")
    p.add_argument("ref", help="references: Kaldi-style text (utt_id words...) or a JSON-lines manifest")
    p.add_argument("hyp", help="hypotheses, in either format")
    p.add_argument("--details-dir", help="write scores.json and per-utterance alignments here")
    p.add_argument("--results", help="add these scores to a results JSON file under --name")
    p.add_argument("--name", default="", help="the set's name, e.g. test")
    p.set_defaults(run=cmd_score)

    p = commands.add_parser("transcribe", help="print PATH<TAB>TRANSCRIPT for each audio file")
    p.add_argument("model", help="model file (model.pt)")
    p.add_argument("audio", nargs="+", help="audio files (WAV, FLAC, OGG, SPHERE; any rate and channels)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.set_defaults(run=cmd_transcribe)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
