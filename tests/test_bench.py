"""``asr bench``: FLOPs counted from the layer sizes, and a real (tiny) run on the CPU."""

import json
from pathlib import Path

from asr.bench import forward_flops_per_frame
from asr.cli import main
from asr.model import CTCModel, ModelConfig


def test_flops_are_twice_the_multiply_adds_of_every_layer() -> None:
    config = ModelConfig(input_dim=80, vocab_size=29, conv_channels=256, conv_kernel=5, hidden_size=256, num_layers=3, subsampling=4)
    conv = 2 * (2 * 5 * 80 * 256) + 2 * 5 * 256 * 256  # the first convolution runs at twice the output frame rate
    lstm = 2 * 2 * 4 * 256 * (256 + 256) + 2 * (2 * 2 * 4 * 256 * (512 + 256))  # layer 0 reads the convolutions' 256
    linear = 2 * 512 * 29
    assert forward_flops_per_frame(config) == conv + lstm + linear
    # The same count from the parameters: each weight matrix is used once per frame at its rate.
    model = CTCModel(config)
    matrices = sum(p.numel() for name, p in model.named_parameters() if p.dim() >= 2 and "subsample" not in name)
    assert forward_flops_per_frame(config) - conv == 2 * matrices


def test_conv2d_flops_count_each_filter_at_each_mel_bin() -> None:
    config = ModelConfig(input_dim=80, vocab_size=29, conv_channels=256, conv_kernel=5, hidden_size=256, num_layers=3,
                         subsampling=4, frontend="conv2d", conv2d_channels=32)
    conv = 2 * 40 * 2 * 25 * 1 * 32 + 20 * 2 * 25 * 32 * 32  # (frames x2 at the first layer) x mel bins x 2 x kernel x channels
    projection = 2 * 32 * 20 * 256
    lstm = 2 * 2 * 4 * 256 * (256 + 256) + 2 * (2 * 2 * 4 * 256 * (512 + 256))
    assert forward_flops_per_frame(config) == conv + projection + lstm + 2 * 512 * 29


def test_bench_runs_on_the_cpu_and_prints_its_figures(capsys, tmp_path: Path) -> None:
    assert main(["bench", "--steps", "2", "--device", "cpu", "--json", "--set", "model.hidden_size=32",
                 "--set", "model.num_layers=1", "--set", "model.inter_ctc_layer=0",  # one layer: no intermediate CTC
                 "--set", "model.conv_channels=32", "--set", "optim.max_batch_frames=1500",
                 "--profile", str(tmp_path / "profile.txt")]) == 0
    figures = json.loads(capsys.readouterr().out)
    for name in ("training", "inference"):
        assert figures[name]["audio_seconds_per_second"] > 0 and figures[name]["peak_memory_mb"] > 0
        assert 0 < figures[name]["flops_per_second"] < figures["peak_flops"]
    # The profile's table names the operators a training step spends its time in.
    profile = (tmp_path / "profile.txt").read_text()
    assert profile.startswith("4 training steps") and profile.count("aten::") >= 10
