import pytest
import torch
from torch import nn

from asr.model import BiLSTM, CTCModel, Dropout, ModelConfig, reverse_padded


def small_model(subsampling: int = 4, frontend: str = "conv1d") -> CTCModel:
    torch.manual_seed(0)
    config = ModelConfig(input_dim=80, vocab_size=29, conv_channels=32, subsampling=subsampling, hidden_size=24, num_layers=2,
                         frontend=frontend, conv2d_channels=8)
    return CTCModel(config).eval()


@pytest.mark.parametrize("frontend", ["conv1d", "conv2d"])
@pytest.mark.parametrize("subsampling", [2, 4])
def test_output_lengths_follow_subsampling(subsampling: int, frontend: str) -> None:
    model = small_model(subsampling, frontend)
    lengths = torch.tensor([101, 64, 7])
    log_probs, out_lengths = model(torch.randn(3, 101, 80), lengths)
    assert out_lengths.tolist() == [model.config.output_frames(n) for n in lengths.tolist()]
    assert log_probs.shape == (3, out_lengths.max().item(), 29)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, log_probs.size(1)))


@pytest.mark.parametrize("frontend", ["conv1d", "conv2d"])
def test_padding_never_changes_a_result(frontend: str) -> None:
    model = small_model(frontend=frontend)
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
    with pytest.raises(ValueError, match="frontend"):
        ModelConfig(frontend="conv3d")
    with pytest.raises(ValueError, match="odd"):
        ModelConfig(conv_kernel=4)


def test_conv2d_filters_follow_a_pattern_along_the_mel_axis() -> None:
    """The 2-D front end's convolutions answer a spectral pattern wherever it lies: moving the input
    4 mel bins up (two stride-2 layers) moves their output 1 bin up, away from the edges."""
    convs = small_model(frontend="conv2d").subsample.convs
    x = torch.randn(1, 1, 40, 80)
    shifted = torch.roll(x, 4, dims=3)

    def maps(x: torch.Tensor) -> torch.Tensor:
        for conv in convs:
            x = torch.nn.functional.gelu(conv(x))
        return x

    torch.testing.assert_close(maps(shifted)[..., 4:16], maps(x)[..., 3:15])


def test_bilstm_equals_torch_packed_bidirectional_lstm() -> None:
    """Our BiLSTM, padded (the CPU's form) or packed (the GPU's), computes what nn.LSTM over packed sequences does."""
    torch.manual_seed(0)
    ours = BiLSTM(8, 6, num_layers=2, dropout=0.0).eval()
    reference = nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True).eval()
    with torch.no_grad():
        for layer in range(2):
            for suffix, lstm in (("", ours.forward_layers[layer]), ("_reverse", ours.backward_layers[layer])):
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(reference, f"{kind}_l{layer}{suffix}").copy_(getattr(lstm, f"{kind}_l0"))
    x, lengths = torch.randn(3, 11, 8), torch.tensor([11, 4, 7])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True)
    for packed in (False, True):
        got = ours(x, lengths, packed=packed)
        for row, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(got[row, :n], expected[row, :n])


def test_dropout_keeps_each_unit_with_probability_1_minus_p_and_rescales_it() -> None:
    """The CPU mask drawn with torch.rand is dropout's: the kept share, the scale, the gradient, eval untouched."""
    torch.manual_seed(0)
    dropout = Dropout(0.3)
    x = torch.rand(1000, 1000) + 0.5  # no zeros, so a zero output is a dropped unit
    x.requires_grad_()
    y = dropout(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.002  # 1e6 draws: the standard error is 0.00046
    torch.testing.assert_close(y[kept], x[kept] / 0.7)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept / 0.7)
    assert torch.equal(dropout.eval()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))  # torch's own rule at the edges


def test_reverse_padded_keeps_padding_in_place() -> None:
    x = torch.arange(10.0).view(2, 5, 1)
    assert reverse_padded(x, torch.tensor([5, 3]))[:, :, 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]


def test_intermediate_ctc_taps_a_lower_layer_through_the_same_output_layer() -> None:
    """The tap adds no parameters and changes no inference output; its log-probabilities are layer 1's."""
    plain = small_model()
    tapped = CTCModel(ModelConfig(**{**vars(plain.config), "inter_ctc_layer": 1})).eval()
    tapped.load_state_dict(plain.state_dict())  # same parameter names and shapes: nothing was added
    features, lengths = torch.randn(2, 60, 80), torch.tensor([60, 41])
    log_probs, out_lengths = plain(features, lengths)
    final, final_lengths, inter = tapped(features, lengths, intermediate=True)
    torch.testing.assert_close(final, log_probs)
    assert torch.equal(final_lengths, out_lengths)
    x, sub_lengths = tapped.subsample(features, lengths)
    layer_1 = tapped.lstm.layer(0, x, sub_lengths)
    torch.testing.assert_close(inter, tapped.output(layer_1).log_softmax(dim=-1))
    assert not torch.allclose(inter, final)


def test_self_conditioning_feeds_layer_1s_posteriors_to_layer_2_in_decoding_too() -> None:
    """Layer 2 reads layer 1's output plus a linear map of layer 1's CTC posteriors, with or without ``intermediate``."""
    plain = small_model()
    conditioned = CTCModel(ModelConfig(**{**vars(plain.config), "inter_ctc_layer": 1, "self_condition": True})).eval()
    missing, unexpected = conditioned.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["condition.bias", "condition.weight"] and not unexpected  # all it adds
    features, lengths = torch.randn(2, 60, 80), torch.tensor([60, 41])
    x, sub_lengths = conditioned.subsample(features, lengths)
    layer_1 = conditioned.lstm.layer(0, x, sub_lengths)
    inter = conditioned.output(layer_1).log_softmax(dim=-1)
    layer_2 = conditioned.lstm.layer(1, layer_1 + conditioned.condition(inter.exp()), sub_lengths)
    expected = conditioned.output(layer_2).log_softmax(dim=-1)
    log_probs, _ = conditioned(features, lengths)
    torch.testing.assert_close(log_probs, expected)
    final, _, tapped = conditioned(features, lengths, intermediate=True)
    torch.testing.assert_close(final, expected)
    torch.testing.assert_close(tapped, inter)
    assert not torch.allclose(log_probs, plain(features, lengths)[0])  # the conditioning changes what comes out


def test_self_conditioning_needs_an_intermediate_layer() -> None:
    with pytest.raises(ValueError, match="self_condition"):
        ModelConfig(num_layers=2, self_condition=True)


@pytest.mark.parametrize("layer", [-1, 2])
def test_intermediate_ctc_layer_must_lie_below_the_top(layer: int) -> None:
    with pytest.raises(ValueError, match="inter_ctc_layer"):
        ModelConfig(num_layers=2, inter_ctc_layer=layer)
