"""Starting to train from a manifest of a million lines: time to the first batch and peak memory.

Writes a manifest of ``--lines`` lines (the given manifest's utterances over
and over), then, in a fresh process each, builds the trainer and takes its
first training batch two ways: streamed (``stream.enabled=true``) and read
whole (the default for small corpora). Prints seconds and peak resident memory
of each.

    python benchmarks/manifest_streaming.py exp/an4/manifests/train.jsonl exp/an4/stats.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_BATCH = """
import resource, sys, time
start = time.perf_counter()
from asr.train import Trainer, load_config
config = load_config(sys.argv[1], sys.argv[5:])
trainer = Trainer(config, sys.argv[2], None, sys.argv[3], sys.argv[4])
batch = next(iter(trainer.loader))
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, trainer.batches_per_epoch, len(batch.indices))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="a real manifest; its lines are repeated")
    parser.add_argument("stats", help="its statistics file (stage 2)")
    parser.add_argument("--config", default="recipes/an4/conf/train.yaml")
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()

    lines = [line for line in Path(args.manifest).read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as scratch:
        big = Path(scratch) / "big.jsonl"
        with big.open("w") as out:
            for line in itertools.islice(itertools.cycle(lines), args.lines):
                entry = json.loads(line)
                entry["audio_filepath"] = str(Path(args.manifest).parent / entry["audio_filepath"])
                out.write(json.dumps(entry) + "\n")
        print(f"{args.lines} lines, {big.stat().st_size / 2**20:.0f} MB", flush=True)
        for name, overrides in [("streamed", ["stream.enabled=true"]), ("read whole", [])]:
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-c", FIRST_BATCH, args.config, str(big), args.stats, str(Path(scratch) / name), "num_workers=0", *overrides],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise SystemExit(f"{name}: {result.stderr.strip().splitlines()[-1]}")
            seconds, peak_mb, batches, size = result.stdout.split()[-4:]
            print(
                f"{name}: first batch ({size} utterances) after {float(seconds):.1f} s in the process"
                f" ({time.perf_counter() - start:.1f} s with its start), peak memory {float(peak_mb):.0f} MB,"
                f" {batches} batches an epoch",
                flush=True,
            )


if __name__ == "__main__":
    main()
