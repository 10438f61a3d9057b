"""Greedy (best-path) CTC decoding over batches."""

from __future__ import annotations

import torch

from asr.features import valid_frames


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path per utterance: arg-max each frame, merge repeats, drop blanks (id 0).

    ``log_probs`` is ``(batch, frames, vocab)``; frames past ``lengths`` are ignored.
    """
    best = log_probs.argmax(dim=-1)
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = changed & (best != 0)
    keep &= valid_frames(lengths.to(best.device), best.size(1))
    best, keep = best.cpu(), keep.cpu()
    return [row[mask].tolist() for row, mask in zip(best, keep)]
