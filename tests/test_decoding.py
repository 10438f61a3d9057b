import torch

from asr.decoding import greedy_decode


def one_hot_log_probs(paths: list[list[int]], vocab: int = 5) -> torch.Tensor:
    frames = max(len(p) for p in paths)
    log_probs = torch.full((len(paths), frames, vocab), -10.0)
    for b, path in enumerate(paths):
        for t, token in enumerate(path):
            log_probs[b, t, token] = 0.0
    return log_probs


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    log_probs = one_hot_log_probs([[1, 1, 0, 1, 2, 2, 0, 0, 3], [0, 4, 4, 4, 0, 4, 1, 1, 1]])
    assert greedy_decode(log_probs, torch.tensor([9, 9])) == [[1, 1, 2, 3], [4, 4, 1]]


def test_greedy_ignores_frames_past_the_length() -> None:
    log_probs = one_hot_log_probs([[2, 0, 3, 3, 1, 1]])
    assert greedy_decode(log_probs, torch.tensor([4])) == [[2, 3]]
    assert greedy_decode(log_probs, torch.tensor([0])) == [[]]
