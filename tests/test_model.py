import pytest
import torch

from asr.model import CTCModel, ModelConfig


def small_model(subsampling: int = 4) -> CTCModel:
    torch.manual_seed(0)
    config = ModelConfig(input_dim=80, vocab_size=29, conv_channels=32, subsampling=subsampling, hidden_size=24, num_layers=2)
    return CTCModel(config).eval()


@pytest.mark.parametrize("subsampling", [2, 4])
def test_output_lengths_follow_subsampling(subsampling: int) -> None:
    model = small_model(subsampling)
    lengths = torch.tensor([101, 64, 7])
    log_probs, out_lengths = model(torch.randn(3, 101, 80), lengths)
    assert out_lengths.tolist() == [model.config.output_frames(n) for n in lengths.tolist()]
    assert log_probs.shape == (3, out_lengths.max().item(), 29)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, log_probs.size(1)))


def test_padding_never_changes_a_result() -> None:
    model = small_model()
    short = torch.randn(1, 57, 80)
    alone, n_alone = model(short, torch.tensor([57]))
    batch = torch.zeros(3, 130, 80)
    batch[0, :57] = short[0]
    batch[1] = torch.randn(130, 80)
    batch[2, :90] = torch.randn(90, 80)
    batched, n_batched = model(batch, torch.tensor([57, 130, 90]))
    assert n_batched[0] == n_alone[0]
    torch.testing.assert_close(batched[0, : n_alone[0]], alone[0], atol=1e-5, rtol=1e-5)


def test_rejects_unsupported_subsampling() -> None:
    with pytest.raises(ValueError):
        ModelConfig(subsampling=3)
