"""The ``asr`` command: train, decode, score, transcribe and serve, plus ``stats``, ``shards``, ``lm`` and ``tune`` for the recipes.

A user's mistake (a missing file, unreadable audio, a bad configuration) ends
in one line on standard error and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Iterable
from pathlib import Path

from torch.utils.data import DataLoader
from tqdm import tqdm

from asr import bench
from asr.audio import AudioError
from asr.checkpoint import ASRModel, ModelFileError, load_model, store_decoding
from asr.data import (
    ManifestError,
    SpeechDataset,
    Utterance,
    collate,
    read_manifest,
    refuse_test_data,
)
from asr.decoding import BeamSearchDecoder, BeamSearchOptions, tuned_options
from asr.features import FeatureExtractor, accumulate_stats
from asr.formats import FORMATS, StreamWriter, render
from asr.inputs import expand_inputs, output_names
from asr.lm import LanguageModelError, estimate, write_arpa
from asr.scoring import ScoringError, read_transcripts, score, write_details
from asr.shards import read_index, write_shards
from asr.streaming import ManifestSource, reservoir_sample
from asr.text import Tokenizer
from asr.train import ConfigError, Trainer, load_config, resolve_device
from asr.transcribe import decode_utterances
from asr.transcriber import TranscribeOptions, Transcriber, load
from asr.tune import LM_WEIGHTS, WORD_SCORES, tune_lm

USER_ERRORS = (
    AudioError,
    ConfigError,
    LanguageModelError,
    ManifestError,
    ModelFileError,
    ScoringError,
    FileNotFoundError,
)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def cmd_stats(args: argparse.Namespace) -> int:
    """Global feature mean/std and the character vocabulary of a training manifest.

    The manifest is streamed, never held whole. The vocabulary comes from every
    transcript; the statistics, with ``--max-utterances``, from a random sample
    (a few thousand utterances pin down 80 means and deviations as well as a
    million do, and reading every file of a large corpus takes hours).
    """
    config = load_config(args.config, args.set or [])
    source = ManifestSource(args.manifest)
    tokenizer = Tokenizer.from_texts(utterance.text for utterance, _ in source(0, 0, 1))
    every = (utterance for utterance, _ in source(0, 0, 1))
    if args.max_utterances is None:
        utterances = list(every)
    else:
        utterances = reservoir_sample(every, args.max_utterances, random.Random(config.seed))
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
    stats = {"mean": mean.tolist(), "std": std.tolist(), "frames": frames, "vocabulary": tokenizer.vocabulary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stats) + "\n", encoding="utf-8")
    print(
        f"wrote {args.out}: {frames} frames from {len(utterances)} of {source.size.utterances} utterances, "
        f"vocabulary of {len(tokenizer)}"
    )
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


def cmd_shards(args: argparse.Namespace) -> int:
    """Pack a manifest's utterances into WebDataset shards for streamed training (:mod:`asr.shards`)."""
    if args.shuffle:  # shards are read in order, so the corpus is shuffled once here (the lines are held meanwhile)
        utterances: Iterable[Utterance] = read_manifest(args.manifest)
        random.Random(args.seed).shuffle(utterances)
    else:
        utterances = (utterance for utterance, _ in ManifestSource(args.manifest)(0, 0, 1))
    size = write_shards(utterances, args.out_dir, args.utterances_per_shard)
    shards, _ = read_index(args.out_dir)
    print(f"wrote {len(shards)} shards of {size.utterances} utterances ({size.seconds / 3600:.2f} h) into {args.out_dir}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode a manifest into ``hyp.txt`` and ``ref.txt`` (Kaldi style), reporting speed."""
    model = load_model(args.model, resolve_device(args.device))
    utterances = read_manifest(args.manifest)
    decoder = beam_decoder(model, args)
    result = decode_utterances(model, utterances, args.max_batch_frames, decoder=decoder, speeds=args.speeds)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    decoded = [u for u in utterances if u.utt_id in result.hypotheses]
    (out_dir / "hyp.txt").write_text("".join(f"{u.utt_id} {result.hypotheses[u.utt_id]}\n" for u in decoded))
    (out_dir / "ref.txt").write_text("".join(f"{u.utt_id} {u.text}\n" for u in decoded))
    failed = len(utterances) - len(decoded)
    method = "greedy"
    if decoder:
        options = decoder.options
        method = (
            f"beam search (LM weight {options.lm_weight:g}, word score {options.word_score:g},"
            f" letter scale {options.letter_lm_scale:g})"
        )
    if len(args.speeds) > 1:
        method += f", voted over speeds {', '.join(f'{speed:g}' for speed in args.speeds)}"
    print(
        f"{method}: decoded {len(decoded)} utterances ({result.audio_seconds:.1f} s of audio) into {out_dir} in"
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
        results.setdefault(args.name, {})[args.method] = {
            "wer": round(scores.wer, 2),
            "cer": round(scores.cer, 2),
            "utterances": scores.utterances,
        }
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    label = f"{args.name} {args.method}: " if args.name else ""
    print(
        f"{label}WER {scores.wer:.2f}% ({scores.word_errors}/{scores.words} words),"
        f" CER {scores.cer:.2f}% ({scores.char_errors}/{scores.characters} characters),"
        f" {scores.utterances} utterances"
    )
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    """Transcribe files, folders, patterns or manifests to standard output or one file each."""
    files, problems = expand_inputs(args.audio)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if args.format in ("srt", "vtt") and len(files) > 1 and not args.output_dir:
        raise ConfigError(f"{args.format} subtitles of {len(files)} recordings need --output-dir (one file each)")
    transcriber = load_transcriber(args)
    names = output_names(files, args.format) if args.output_dir else {}
    writer = StreamWriter(sys.stdout, args.format)
    failures = len(problems)
    with tqdm(total=len(files), unit="file", disable=len(files) <= 3 or not sys.stderr.isatty(), file=sys.stderr) as progress:
        for transcript in transcriber.stream(files):
            progress.update()
            if transcript.error is not None:
                failures += 1
                progress.write(f"error: {transcript.source}: {transcript.error}", file=sys.stderr)
            elif args.output_dir:
                out = Path(args.output_dir) / names[transcript.source]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(render(transcript, args.format), encoding="utf-8")
            else:
                writer.write(transcript)
    if not args.output_dir:
        writer.close()
    if failures:
        print(f"error: {failures} of {len(files) + len(problems)} inputs could not be transcribed", file=sys.stderr)
    return 1 if failures else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the model over HTTP until interrupted."""
    try:
        import uvicorn

        from asr.serve import create_app
    except ImportError as error:
        raise ConfigError(str(error)) from None
    app = create_app(load_transcriber(args), int(args.max_upload_mb * 2**20), args.max_batch)
    print(f"serving {args.model} on http://{args.host}:{args.port} (API documentation at /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def load_transcriber(args: argparse.Namespace) -> Transcriber:
    """The model (and LM) that ``transcribe`` and ``serve`` ask for."""
    options = TranscribeOptions(batch_seconds=args.batch_seconds)
    beam = {name: getattr(args, name) for name in BEAM_OPTION_NAMES}
    return load(args.model, args.device, args.lm, options, **beam)


def cmd_lm(args: argparse.Namespace) -> int:
    """Estimate a word n-gram (modified Kneser-Ney, ARPA) from a training manifest's transcripts."""
    utterances = read_manifest(args.manifest)
    refuse_test_data(args.manifest, utterances)
    sentences = [u.text.split() for u in utterances if u.text.strip()]
    if not sentences:
        raise ManifestError(f"{args.manifest}: no transcripts to estimate a language model from")
    model = estimate(sentences, args.order)
    write_arpa(model, args.out)
    sizes = ", ".join(f"{len(level)} {n}-grams" for n, level in enumerate(model.probabilities, start=1))
    discounts = "; ".join(" ".join(f"{d:.3f}" for d in triple) for triple in model.discounts)
    print(f"wrote {args.out}: {sizes} from {len(sentences)} sentences (discounts by order: {discounts})")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Grid-search the LM weight, word score and letter scale on a dev manifest; store the best in the model file."""
    utterances = read_manifest(args.manifest)
    refuse_test_data(args.manifest, utterances)
    model = load_model(args.model, resolve_device(args.device))
    options = beam_options(model, args)
    grid = tune_lm(model, utterances, args.lm, args.lm_weights, args.word_scores, args.letter_lm_scales, options)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "grid.jsonl").write_text("".join(json.dumps(vars(point)) + "\n" for point in grid))
    best = grid[0]
    chosen = {"lm_weight": best.lm_weight, "word_score": best.word_score, "letter_lm_scale": best.letter_lm_scale}
    store_decoding(args.model, {**chosen, "lexicon": options.lexicon})
    print(
        f"best of {len(grid)} on {args.manifest}: LM weight {best.lm_weight:g}, word score {best.word_score:g},"
        f" letter scale {best.letter_lm_scale:g},"
        f" WER {best.wer:.2f}%, CER {best.cer:.2f}% (stored in {args.model}; grid in {out_dir / 'grid.jsonl'})"
    )
    return 0


BEAM_OPTION_NAMES = (
    "lm_weight",
    "word_score",
    "letter_lm_scale",
    "beam_size",
    "beam_size_token",
    "beam_threshold",
    "lexicon",
)


def beam_options(model: ASRModel, args: argparse.Namespace) -> BeamSearchOptions:
    """Defaults, then the values tuned into the model file, then what the command line says."""
    return tuned_options(model.decoding, **{name: getattr(args, name, None) for name in BEAM_OPTION_NAMES})


def beam_decoder(model: ASRModel, args: argparse.Namespace) -> BeamSearchDecoder | None:
    """The beam-search decoder the options ask for, or None (greedy) without ``--lm``."""
    if not args.lm:
        return None
    return BeamSearchDecoder(model.tokenizer.vocabulary, args.lm, beam_options(model, args))


def add_beam_options(p: argparse.ArgumentParser, lm_required: bool = False) -> None:
    p.add_argument("--lm", required=lm_required, help="word n-gram in ARPA format: beam search instead of greedy")
    p.add_argument("--lm-weight", type=float, help="default: the value tuned into the model file, else 1")
    p.add_argument("--word-score", type=float, help="default: the value tuned into the model file, else 0")
    p.add_argument(
        "--letter-lm-scale",
        type=float,
        help="spelled letters' LM scores times this (default: the value tuned into the model file, else 1)",
    )
    p.add_argument("--beam-size", type=int, help="hypotheses kept per frame (default 50)")
    p.add_argument("--beam-size-token", type=int, help="tokens tried per frame (default: all)")
    p.add_argument("--beam-threshold", type=float, help="prune hypotheses this far below the best (default 25)")
    p.add_argument(
        "--lexicon",
        action=argparse.BooleanOptionalAction,
        help="--no-lexicon allows words outside the LM's vocabulary (default: as tuned, else --lexicon)",
    )


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: a GPU if there is one)")
    p.add_argument(
        "--batch-seconds", type=float, default=60.0, help="padded audio per batch: recordings and windows by duration"
    )


def float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None


def speed_list(text: str) -> list[float]:
    speeds = float_list(text)
    if not all(0 < speed for speed in speeds):
        raise argparse.ArgumentTypeError(f"speeds must be positive: {text!r}")
    return speeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train a model from manifests")
    p.add_argument("--config", required=True, help="training configuration (YAML)")
    p.add_argument("--train", required=True, help="training manifest (JSON lines), or a folder of shards from 'asr shards'")
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
    p.add_argument("--max-utterances", type=positive_int, help="compute the statistics from a random sample of this many (default: all)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, as for 'asr train'")
    p.set_defaults(run=cmd_stats)

    p = commands.add_parser("lm", help="word n-gram language model (ARPA) from a training manifest")
    p.add_argument("--manifest", required=True, help="training manifest: its transcripts are the corpus")
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--out", required=True, help="ARPA file to write")
    p.set_defaults(run=cmd_lm)

    p = commands.add_parser("tune", help="choose the LM weight, word score and letter scale on a dev manifest")
    p.add_argument("model", help="model file (model.pt): the chosen values are stored in it")
    p.add_argument("manifest", help="dev manifest (test data is refused)")
    p.add_argument("--out-dir", required=True, help="where to write grid.jsonl")
    p.add_argument("--lm-weights", type=float_list, default=LM_WEIGHTS)
    p.add_argument("--word-scores", type=float_list, default=WORD_SCORES)
    p.add_argument(
        "--letter-lm-scales",
        type=float_list,
        default=[1.0],
        help="spelled letters' LM scales to try, e.g. 0,0.25,0.5,1 (default 1: as any word; README, row T)",
    )
    p.add_argument("--device", default="auto")
    add_beam_options(p, lm_required=True)
    p.set_defaults(run=cmd_tune)

    p = commands.add_parser("shards", help="pack a training manifest into WebDataset shards for streamed training")
    p.add_argument("manifest")
    p.add_argument("out_dir", help="folder for shard-NNNNNN.tar and index.json ('asr train --train OUT_DIR')")
    p.add_argument("--utterances-per-shard", type=int, default=1000)
    p.add_argument("--no-shuffle", dest="shuffle", action="store_false", help="keep the manifest's order (default: shuffle once)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_shards)

    p = commands.add_parser("decode", help="decode a manifest into hyp.txt and ref.txt")
    p.add_argument("model", help="model file (model.pt)")
    p.add_argument("manifest")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--max-batch-frames", type=int, default=40000)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--speeds",
        type=speed_list,
        default=[1.0],
        help="decode at each of these speeds (e.g. 1,0.9,1.1) and vote word by word; the first breaks ties",
    )
    add_beam_options(p)
    p.set_defaults(run=cmd_decode)

    p = commands.add_parser("score", help="WER and CER of hypotheses against references")
    p.add_argument("ref", help="references: Kaldi-style text (utt_id words...) or a JSON-lines manifest")
    p.add_argument("hyp", help="hypotheses, in either format")
    p.add_argument("--details-dir", help="write scores.json and per-utterance alignments here")
    p.add_argument("--results", help="add these scores to a results JSON file under --name")
    p.add_argument("--name", default="", help="the set's name, e.g. test")
    p.add_argument("--method", default="greedy", help="the decoding's name in the results file, e.g. beam_lm")
    p.set_defaults(run=cmd_score)

    p = commands.add_parser("transcribe", help="transcribe audio files, folders, patterns or manifests")
    p.add_argument("model", help="model file (model.pt)")
    p.add_argument(
        "audio", nargs="+", help="audio files (WAV, FLAC, OGG, SPHERE; any rate), folders, glob patterns, manifests"
    )
    p.add_argument("--format", choices=FORMATS, default="txt", help="txt on standard output is SOURCE<TAB>TEXT")
    p.add_argument("--output-dir", help="write one file per input here, named after it, instead of standard output")
    add_runtime_options(p)
    add_beam_options(p)
    p.set_defaults(run=cmd_transcribe)

    p = commands.add_parser("serve", help="serve a model over HTTP (POST /transcribe, GET /health)")
    p.add_argument("model", help="model file (model.pt)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=100.0, help="larger uploads get 413")
    p.add_argument("--max-batch", type=int, default=8, help="most uploads transcribed together")
    add_runtime_options(p)
    add_beam_options(p)
    p.set_defaults(run=cmd_serve)
    p = commands.add_parser("bench", help="training and inference speed of a configuration on this machine")
    bench.add_arguments(p)
    p.set_defaults(run=bench.run)
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
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
