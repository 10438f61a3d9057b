"""``asr bench``: how fast a model configuration trains and infers on this machine, without the data pipeline.

Batches of synthetic audio with realistic durations (uniform between 1 and 20
seconds, or the durations of a real manifest), formed by the training sampler
(frame cap, concatenation) as in a real run, go through the real feature extractor, model, CTC loss and
optimizer. Printed for training and for inference: audio seconds per second
of wall time, peak memory, and model FLOP utilisation: FLOPs counted from the
layer sizes (multiply-adds of the convolutions, LSTM gates and output layer;
a training step counted as three forward passes), over wall time, over the
device's peak, which is printed with where it came from.

With ``--profile PATH``, a few more training steps run under torch.profiler
and its table of operators, by their own time on the device, goes to PATH:
where the time goes that the utilisation figure says is not spent on FLOPs.

What the data pipeline costs on top is measured by
``benchmarks/data_pipeline.py``: the trainer itself with and without its loader.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.data import BucketBatchSampler
from asr.features import FeatureExtractor
from asr.model import CTCModel, ModelConfig
from asr.train import OptimConfig, TrainConfig, autocast_dtype, build_optimizer, emitted_frames, load_config, resolve_device

# Dense peaks in FLOP/s for the datatypes training uses; the CPU's is computed (see cpu_peak).
GPU_PEAKS = {"H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}, "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}}


@dataclass
class Result:
    audio_seconds_per_second: float
    peak_memory_mb: float
    flops_per_second: float


def forward_flops_per_frame(config: ModelConfig) -> float:
    """Forward FLOPs per output frame (2 per multiply-add) of the convolutions, the LSTMs and the output layer."""
    flops = 0.0
    layers = config.stride2_layers
    if config.frontend == "conv2d":
        channels, bins = 1, config.input_dim
        for layer in range(layers):
            frames_per_output = 2 ** (layers - 1 - layer)  # the first convolution runs at twice the output rate, ...
            bins = (bins + 1) // 2
            flops += frames_per_output * bins * 2 * config.conv_kernel**2 * channels * config.conv2d_channels
            channels = config.conv2d_channels
        flops += 2 * channels * bins * config.conv_channels  # the projection to the LSTMs
    else:
        width = config.input_dim
        for layer in range(layers):
            frames_per_output = 2 ** (layers - 1 - layer)
            flops += frames_per_output * 2 * config.conv_kernel * width * config.conv_channels
            width = config.conv_channels
    hidden = config.hidden_size
    for layer in range(config.num_layers):
        inputs = config.conv_channels if layer == 0 else 2 * hidden
        flops += 2 * 2 * 4 * hidden * (inputs + hidden)  # two directions, four gates
    return flops + 2 * 2 * hidden * config.vocab_size


def cpu_peak(threads: int) -> tuple[float, str]:
    """Peak FP32 FLOP/s of ``threads`` cores at the clock /proc/cpuinfo reports: two FMA pipes a core,
    each 16 FP32 lanes wide with AVX-512 (64 FLOPs a cycle), else 8 with AVX2 (32). The AVX-512 figure
    is an assumption about the pipes' width; on this project's 2-core AMD EPYC the 32 of AVX2 was
    exceeded by measurement (98% "utilisation" in training), so it cannot be this CPU's peak."""
    mhz, flags = 0.0, ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            mhz = max(mhz, float(line.split(":")[1]))
        elif line.startswith("flags"):
            flags = line
    per_cycle = 64 if " avx512f" in flags else 32
    peak = threads * mhz * 1e6 * per_cycle
    return peak, f"{threads} cores x {mhz / 1000:.2f} GHz x {per_cycle} FP32 FLOPs a cycle"


def device_peak(device: torch.device, dtype_name: str, override: float | None) -> tuple[float, str]:
    if override:
        return override * 1e12, "given by --peak-tflops"
    if device.type == "cpu":
        return cpu_peak(torch.get_num_threads())
    name = torch.cuda.get_device_name(device)
    for key, peaks in GPU_PEAKS.items():
        if key in name:
            return peaks[dtype_name], f"{name}: {key} datasheet, dense {dtype_name}"
    raise SystemExit(f"error: no known peak for {name}; pass --peak-tflops")


def make_batches(durations: list[float], config: TrainConfig, steps: int, seed: int) -> list[list[float]]:
    """``steps`` batches of durations formed as the trainer forms them: its bucketing sampler,
    frame cap and utterance concatenation, so that the figures compare with a real run's."""
    hop = config.features.hop_ms / 1000
    sampler = BucketBatchSampler(
        [int(seconds / hop) for seconds in durations], config.optim.max_batch_frames, seed=seed, concat_prob=config.augment.concat_prob
    )
    batches: list[list[float]] = []
    while len(batches) < steps:
        sampler.set_epoch(sampler.epoch + 1)
        for batch in sampler:
            batches.append([sum(durations[i] for i in item) if isinstance(item, tuple) else durations[item] for item in batch])
    return batches[:steps]


def synthetic(batch: list[float], sample_rate: int, device: torch.device, vocab: int) -> tuple:
    """Noise of the batch's durations and random labels (8 characters a second), on ``device``,
    with the lengths also on the host, where the CTC loss and the counting read them."""
    lengths = torch.tensor([int(s * sample_rate) for s in batch])
    waveforms = 0.1 * torch.randn(len(batch), int(lengths.max()))
    labels = [torch.randint(1, vocab, (max(1, int(s * 8)),)) for s in batch]
    targets = torch.cat(labels)
    return waveforms.to(device), lengths.to(device), lengths, targets.to(device), torch.tensor([len(x) for x in labels])


def measure(
    model: CTCModel, features: FeatureExtractor, batches: list[list[float]], device: torch.device, amp: torch.dtype | None, train: bool
) -> Result:
    model.train(train)
    optimizer = build_optimizer(model, OptimConfig())  # the trainer's optimizer; its settings do not change the cost
    ctc = torch.nn.CTCLoss(zero_infinity=True, reduction="sum")
    flops_per_frame = forward_flops_per_frame(model.config) * (3 if train else 1)
    prepared = [synthetic(b, features.config.sample_rate, device, model.config.vocab_size) for b in batches]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    audio = flops = 0.0
    start = 0.0
    for index, (waveforms, lengths, host_lengths, targets, target_lengths) in enumerate(prepared):
        if index == 2:  # two warm-up batches (allocator, cuDNN plans) are not timed
            _synchronize(device)
            start, audio, flops = time.perf_counter(), 0.0, 0.0
        # Frame counts from the lengths on the host, as the trainer has them: no step waits for the device.
        out_lengths = emitted_frames(features.config, model.config, host_lengths)
        with torch.set_grad_enabled(train), torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            feats, frames = features(waveforms, lengths)
            log_probs, _ = model(feats, frames)
        if train:
            loss = ctc(log_probs.float().transpose(0, 1), targets, out_lengths, target_lengths) / len(host_lengths)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        audio += host_lengths.sum().item() / features.config.sample_rate
        flops += out_lengths.sum().item() * flops_per_frame
    _synchronize(device)
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Result(audio / wall, peak, flops / wall)


def write_profile(
    path: str, model: CTCModel, features: FeatureExtractor, batches: list[list[float]], device: torch.device, amp: torch.dtype | None
) -> None:
    """Where a training step's time goes: torch.profiler over ``batches``, run after the timed ones (so
    warm), operators by their own time on the device (the GPU's kernels, or the CPU's), the 30 largest."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities, acc_events=True) as profiler:
        measure(model, features, batches, device, amp, train=True)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = profiler.key_averages().table(sort_by=sort, row_limit=30)
    Path(path).write_text(f"{len(batches)} training steps, after the timed ones, sorted by {sort}\n{table}\n")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="recipes/an4/conf/train.yaml", help="training configuration (model, features, batch cap)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. model.hidden_size=1024")
    parser.add_argument("--manifest", help="take durations from this manifest (default: uniform 1 to 20 s)")
    parser.add_argument("--vocab-size", type=int, default=29)
    parser.add_argument("--steps", type=int, default=20, help="batches timed for each of training and inference (after 2 warm-up)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak, if not known here")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--profile", metavar="PATH", help="also profile a few training steps; write torch.profiler's table of operators here")


def run(args: argparse.Namespace) -> int:
    """Measure training and inference and print the figures (``asr bench``)."""
    config = load_config(args.config, args.set)
    device = resolve_device(args.device)
    amp = autocast_dtype(args.precision, device)
    config.model.input_dim, config.model.vocab_size = config.features.n_mels, args.vocab_size
    model = CTCModel(config.model).to(device)
    features = FeatureExtractor(config.features).to(device)
    # cudnn.benchmark stays off, as in training: batches of many lengths would each be tuned anew.
    durations = [float(json.loads(line)["duration"]) for line in Path(args.manifest).read_text().splitlines()] if args.manifest else [1 + 19 * i / 999 for i in range(1000)]
    batches = make_batches(durations, config, args.steps + 2, seed=0)
    dtype_name = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[amp]
    peak, peak_source = device_peak(device, dtype_name, args.peak_tflops)
    results = {name: measure(model, features, batches, device, amp, train=name == "training") for name in ("training", "inference")}
    if args.profile:
        write_profile(args.profile, model, features, batches[:4], device, amp)
    if args.json:
        print(json.dumps({"device": str(device), "precision": dtype_name, "peak_flops": peak, **{k: vars(v) for k, v in results.items()}}))
        return 0
    print(
        f"{model.num_parameters() / 1e6:.2f} M parameters on {device} ({dtype_name}), batches of at most"
        f" {config.optim.max_batch_frames} frames, {args.steps} timed batches each; peak {peak / 1e12:.2f} TFLOP/s ({peak_source})"
    )
    for name, result in results.items():
        print(
            f"{name}: {result.audio_seconds_per_second:.0f} s of audio per s, peak memory {result.peak_memory_mb:.0f} MB,"
            f" {result.flops_per_second / 1e9:.1f} GFLOP/s = {100 * result.flops_per_second / peak:.1f}% of peak"
        )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
