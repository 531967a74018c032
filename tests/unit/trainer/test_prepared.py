"""The train/eval split: deterministic, never empty on either side when it can be."""

from __future__ import annotations

import pytest

from llmops_trainer.plan import default_checkpoint_steps, total_steps
from llmops_trainer.prepared import split

pytestmark = pytest.mark.unit


def rows(n: int) -> list[dict[str, str]]:
    return [{"prompt": f"p{i}", "response": f"r{i}"} for i in range(n)]


@pytest.mark.parametrize(
    ("n", "fraction", "n_eval"),
    [(0, 0.1, 0), (1, 0.1, 0), (2, 0.1, 1), (9, 0.1, 1), (50, 0.1, 5), (50, 0.5, 25), (3, 0.99, 2)],
)
def test_sizes(n: int, fraction: float, n_eval: int) -> None:
    train, held_out = split(rows(n), fraction)
    assert len(held_out) == n_eval
    assert len(train) + len(held_out) == n
    assert not n or train  # never everything held out


def test_deterministic_and_order_preserving() -> None:
    first = split(rows(100), 0.1)
    assert split(rows(100), 0.1) == first
    train, held_out = first
    assert train == sorted(train, key=lambda r: int(r["prompt"][1:]))
    assert {r["prompt"] for r in train}.isdisjoint(r["prompt"] for r in held_out)


def test_duplicates_are_split_like_any_record() -> None:
    train, held_out = split([{"text": "same"}] * 10, 0.2)
    assert (len(train), len(held_out)) == (8, 2)


@pytest.mark.parametrize(
    ("rows_", "batch", "epochs", "world", "steps", "every"),
    [
        (36, 4, 1, 1, 9, 50),
        (45, 4, 3, 1, 36, 50),
        (1000, 8, 2, 2, 126, 50),
        (1, 64, 1, 1, 1, 50),
        (100_000, 8, 1, 1, 12_500, 1_250),
    ],
)
def test_steps_and_default_checkpoint_interval(
    rows_: int, batch: int, epochs: int, world: int, steps: int, every: int
) -> None:
    assert total_steps(rows_, batch, epochs, world) == steps
    assert default_checkpoint_steps(steps) == every
