"""Chunks to wire JSON, fast: precomputed fragments glued with one f-string per message.

The output is byte-for-byte what `Transaction.to_wire()` and `FraudLabel.model_dump_json()` give
for the same values (tests/unit/test_generate_wire.py proves it), at a fraction of the cost:
pydantic per message would cap the generator near 30,000 tx/s.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import numpy as np

from streamguard.domain.models import FraudLabel, Transaction
from streamguard.generate.engine import Chunk, Engine
from streamguard.generate.geo import CITIES
from streamguard.generate.merchants import CHANNELS, payee_key_type
from streamguard.generate.population import MAX_DEVICES
from streamguard.generate.scenarios import SCENARIOS


class Rendered:
    """One chunk as Kafka messages: keys, transaction values and label values (all str)."""

    __slots__ = ("keys", "values", "labels")

    def __init__(self, keys: list[str], values: list[str], labels: list[str]):
        self.keys, self.values, self.labels = keys, values, labels

    def __len__(self) -> int:
        return len(self.values)


#: Labels per `transaction_labels` message: a stream tick's chunk (200 at 20,000 tx/s) goes
#: whole, a batch mode chunk in a few messages of about 50 kB.
LABELS_PER_MESSAGE = 500


def label_batches(labels: list[str], size: int = LABELS_PER_MESSAGE) -> list[str]:
    """The chunk's labels as JSON arrays of up to `size` (a message each, parsed by
    `domain.models.labels_from_json`): one message per transaction doubled the generator's
    and the broker's messages and cost the decision service a Kafka message per label."""
    return ["[" + ",".join(labels[i : i + size]) + "]" for i in range(0, len(labels), size)]


#: Amounts below this many centavos come from a table of ready strings (6 MB for R$ 1,000).
_TABLE_CENTS = 100_000


@lru_cache(maxsize=1)
def _amount_table() -> np.ndarray:
    return np.array([f"{c // 100}.{c % 100:02d}" for c in range(_TABLE_CENTS)], dtype=object)


@lru_cache(maxsize=1)
def _low_hex() -> list[str]:
    return [f"{i:03x}" for i in range(4096)]


def amounts(cents: np.ndarray) -> list[str]:
    """Each amount as the wire writes it: 1234.50 (two decimals, no float on the way)."""
    out = _amount_table()[np.minimum(cents, _TABLE_CENTS - 1)]
    for row in np.nonzero(cents >= _TABLE_CENTS)[0].tolist():
        value = int(cents[row])
        out[row] = f"{value // 100}.{value % 100:02d}"
    return out.tolist()


def transaction_ids(prefix: str, seqs: range) -> list[str]:
    """The ids for consecutive sequence numbers: prefix + 12 hex digits, built 4096 at a time."""
    low, ids = _low_hex(), []
    seq, end = seqs.start, seqs.stop
    while seq < end:
        block_end = min((seq | 0xFFF) + 1, end)
        head = f"{prefix}{seq >> 12:09x}"
        ids.extend([head + tail for tail in low[seq & 0xFFF : (seq & 0xFFF) + block_end - seq]])
        seq = block_end
    return ids


def render(chunk: Chunk, engine: Engine) -> Rendered:
    """The chunk's messages, numbering its transactions from the engine's sequence."""
    pop = engine.population
    account = chunk.account
    accounts = pop.account_fragments.take(account)
    merchants = pop.merchant_fragments[chunk.merchant * len(CHANNELS) + chunk.channel].tolist()
    custom_rows = np.nonzero(chunk.device < 0)[0].tolist()
    device = chunk.device.copy()
    device[custom_rows] = 0
    places = pop.place_fragments.take(account * MAX_DEVICES + device)
    for row in custom_rows:
        places[row] = pop.place_fragment(chunk.custom[row])
    ids = transaction_ids(engine.id_prefix, engine.assign_ids(len(chunk)))
    values = [
        f'{{"amount":{x},"schema_version":1,"transaction_id":"{i}",{a},'
        f'"currency":"BRL",{m},{p},"ts_ms":{t}}}'
        for x, i, a, m, p, t in zip(
            amounts(chunk.cents), ids, accounts, merchants, places, chunk.ts.tolist(), strict=True
        )
    ]
    keys = pop.keys.take(account)
    labels = [
        f'{{"transaction_id":"{i}","account_id":"{k}","scenario":"legit","is_fraud":false}}'
        for i, k in zip(ids, keys, strict=True)
    ]
    for row in np.nonzero(chunk.scenario)[0].tolist():
        labels[row] = (
            f'{{"transaction_id":"{ids[row]}","account_id":"{keys[row]}",'
            f'"scenario":"{SCENARIOS[chunk.scenario[row]]}","is_fraud":true}}'
        )
    return Rendered(keys, values, labels)


def as_models(chunk: Chunk, engine: Engine, first_seq: int) -> list[tuple[Transaction, FraudLabel]]:
    """The same chunk through the pydantic models (slow; for tests and small samples)."""
    pop = engine.population
    out = []
    for row in range(len(chunk)):
        account = int(chunk.account[row])
        slot = int(chunk.device[row])
        place = chunk.custom[row] if slot < 0 else pop.place(account, slot)
        city = CITIES[place.city]
        merchant = pop.merchants[int(chunk.merchant[row])]
        tx_id = engine.transaction_id(first_seq + row)
        scenario = SCENARIOS[int(chunk.scenario[row])]
        tx = Transaction(
            transaction_id=tx_id,
            account_id=pop.account_id(account),
            card_token=pop.card_token(account),
            card_last4=pop.card_last4(account),
            amount=Decimal(int(chunk.cents[row])) / 100,
            channel=CHANNELS[int(chunk.channel[row])],
            merchant_id=merchant.merchant_id,
            merchant_name=merchant.name,
            merchant_mcc=merchant.mcc,
            payee_key_type=payee_key_type(merchant, CHANNELS[int(chunk.channel[row])]),
            city=city.name,
            state=city.state,
            lat=city.lat,
            lon=city.lon,
            device_id=place.device_id,
            ip_address=place.ip_address,
            ts_ms=int(chunk.ts[row]),
        )
        label = FraudLabel(
            transaction_id=tx_id,
            account_id=tx.account_id,
            scenario=scenario,
            is_fraud=scenario != "legit",
        )
        out.append((tx, label))
    return out
