"""The fast serializer writes exactly what the data contract's models write."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamguard.domain.models import FraudLabel, Transaction, labels_from_json
from streamguard.generate.engine import Engine, GeneratorConfig
from streamguard.generate.wire import (
    LABELS_PER_MESSAGE,
    amounts,
    as_models,
    label_batches,
    render,
    transaction_ids,
)

START_MS = 1_750_000_000_000


@pytest.fixture
def engine() -> Engine:
    # A high fraud rate puts every scenario (custom places, mules, blocked shops) in the chunks.
    return Engine(GeneratorConfig(accounts=500, fraud_rate=0.3), seed=11)


def chunks(engine: Engine, count: int, replace: bool):
    rng = np.random.default_rng(0)
    t = START_MS
    for _ in range(count):
        slots = t + np.cumsum(rng.exponential(8000, 4000)).astype(np.int64)
        t = int(slots[-1])
        yield engine.take(slots, replace=replace)


@pytest.mark.parametrize("replace", [False, True])
def test_fast_output_is_byte_identical_to_the_models(engine: Engine, replace: bool) -> None:
    seen_scenarios = set()
    for chunk in chunks(engine, 3, replace):
        first = engine.next_seq
        rendered = render(chunk, engine)
        models = as_models(chunk, engine, first)
        for key, value, label, (tx, truth) in zip(
            rendered.keys, rendered.values, rendered.labels, models, strict=True
        ):
            assert value.encode() == tx.to_wire()
            assert label == truth.model_dump_json()
            assert key == tx.account_id
            seen_scenarios.add(truth.scenario)
    assert len(seen_scenarios) == 8  # legit and all seven scenarios went through the check


def test_every_message_is_valid_against_the_schema(engine: Engine) -> None:
    for chunk in chunks(engine, 2, False):
        rendered = render(chunk, engine)
        for value, label in zip(rendered.values, rendered.labels, strict=True):
            tx = Transaction.model_validate_json(value)
            truth = FraudLabel.model_validate_json(label)
            assert truth.transaction_id == tx.transaction_id
            assert truth.is_fraud == (truth.scenario != "legit")
            assert json.loads(value)["amount"] == float(tx.amount)
            assert len(tx.card_last4) == 4 and tx.card_token.startswith("tok_")


def test_a_chunks_labels_travel_in_batches_that_hold_each_label_once(engine: Engine) -> None:
    chunk = next(chunks(engine, 1, False))
    rendered = render(chunk, engine)
    batches = label_batches(rendered.labels)
    assert len(batches) == -(-len(rendered) // LABELS_PER_MESSAGE) > 1
    read = [label for batch in batches for label in labels_from_json(batch.encode())]
    assert [label.model_dump_json() for label in read] == rendered.labels
    assert label_batches(rendered.labels[:3], size=2) == [
        f"[{rendered.labels[0]},{rendered.labels[1]}]",
        f"[{rendered.labels[2]}]",
    ]
    assert label_batches([]) == []


def test_amounts_are_exact_with_two_decimals() -> None:
    cents = np.array([1, 10, 99, 100, 12345, 99_999, 100_000, 123_456_789])
    assert amounts(cents) == [
        "0.01",
        "0.10",
        "0.99",
        "1.00",
        "123.45",
        "999.99",
        "1000.00",
        "1234567.89",
    ]


def test_transaction_ids_are_uuid_shaped_and_unique_across_blocks() -> None:
    ids = transaction_ids("f0f216fa-79cb-424c-a670-", range(4000, 9000))
    assert ids == [f"f0f216fa-79cb-424c-a670-{seq:012x}" for seq in range(4000, 9000)]
    import uuid

    assert uuid.UUID(ids[0]).version == 4
