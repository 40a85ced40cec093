"""Length-bucketed batches for bulk encoding: texts sorted by token length, each batch as large as a token budget
allows.

A transformer run costs what its padded batch holds (rows x longest row, and attention grows with the square of
the length), so a batch that mixes a 384-token text with 63 short ones pays for 64 long ones. Sorting a whole
bulk load by token length pads within near-equal lengths; a budget on padded tokens (not a count) keeps long
texts in small batches, where this machine kind runs them fastest (mpnet INT8 on 2 cores: 384-token texts 9.2/s
in batches of 1-4, 7.7/s in batches of 64; 20-token texts 86/s alone, 208/s in batches of 32;
benchmarks/results/onboarding.md)."""

from __future__ import annotations

from collections.abc import Sequence


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch: int) -> list[list[int]]:
    """Indices into `lengths`, grouped into batches: shortest first, each batch's padded size (rows x its longest
    length) at most `token_budget` and at most `max_batch` rows; a text longer than the budget goes alone.
    `token_budget` 0: no budget, batches of `max_batch` in length order. Every index appears exactly once."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    if token_budget < 0:
        raise ValueError(f"token_budget must be 0 (off) or positive, got {token_budget}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # sorted ascending: the newcomer is the batch's longest row
        if current and (len(current) >= max_batch or (token_budget and (len(current) + 1) * lengths[i] > token_budget)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
