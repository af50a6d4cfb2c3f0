"""The transaction generator: a Brazilian population, labelled fraud scenarios, four modes.

`streamguard generate` drives it from the command line; `sample_transactions` gives a few
transactions in-process. See engine.py for how traffic is made, scenarios.py for the attacks,
and blocklist.py for the ids the decision service's lists need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamguard.domain.models import FraudLabel, Transaction


def sample_labelled(
    count: int, seed: int, *, accounts: int = 10_000, fraud_rate: float = 0.01
) -> list[tuple[Transaction, FraudLabel]]:
    """`count` transactions and their labels from a seeded batch run (as pydantic models)."""
    from streamguard.domain.models import FraudLabel, Transaction
    from streamguard.generate.delivery import MemorySink
    from streamguard.generate.engine import Engine, GeneratorConfig
    from streamguard.generate.modes import run_batch

    engine = Engine(GeneratorConfig(accounts=accounts, fraud_rate=fraud_rate), seed=seed)
    sink = MemorySink()
    run_batch(engine, sink, count=count, start_ms=1_750_000_000_000)
    return [
        (Transaction.model_validate_json(value), FraudLabel.model_validate_json(label))
        for value, label in zip(sink.values, sink.labels, strict=True)
    ]


def sample_transactions(count: int, seed: int, *, accounts: int = 10_000) -> list[Transaction]:
    """`count` transactions shaped exactly like the generator's, reproducibly from `seed`."""
    return [tx for tx, _ in sample_labelled(count, seed, accounts=accounts)]
