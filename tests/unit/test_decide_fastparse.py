"""The fast path and the pydantic contract, side by side: the fast path never accepts what the
contract rejects, and when it accepts, it yields exactly the contract's row."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from streamguard.decide.fastparse import transaction_row as fast_row
from streamguard.domain.models import Transaction
from streamguard.generate.simple import random_transaction
from streamguard.store.ledger import transaction_row

APPEND_MS = 1_795_000_000_123
CANONICAL = [random_transaction(random.Random(seed)).to_wire() for seed in range(300)]
BASE = json.loads(CANONICAL[0])

ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    " x",
    "x ",
    "x",
    "X" * 65,
    "x" * 201,
    0,
    1,
    -1,
    1.5,
    -0.0,
    1.005,
    1e-7,
    10**12,
    999_999_999_999.99,
    12_345_678_901_234.5,
    1e300,
    2**63,
    True,
    [],
    {},
    "5.00",
    "١٢٣٤",
    "1234",
    "sp",
    "SP",
    "B1L",
    "BRL",
    "PIX",
    "pix",
    "\u00a0x",
    "x\u2003",
]
MUTATIONS = [(field, value) for field in BASE for value in ODD_VALUES]
MUTATIONS += [(field, ...) for field in BASE]  # the field left out


def contract_row(payload: bytes) -> tuple | None:
    try:
        return transaction_row(Transaction.model_validate_json(payload), APPEND_MS)
    except (ValidationError, ValueError):
        return None


def same(fast: tuple, contract: tuple) -> bool:
    if len(fast) != len(contract):
        return False
    for a, b in zip(fast, contract, strict=True):
        if isinstance(b, Decimal) and (not isinstance(a, Decimal) or str(a) != str(b)):
            return False
        if type(a) is not type(b) or a != b:
            return False
    return True


def test_canonical_messages_take_the_fast_path_with_the_contract_row() -> None:
    for payload in CANONICAL:
        fast = fast_row(payload, APPEND_MS)
        assert fast is not None, payload
        assert same(fast, contract_row(payload)), payload  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value"), MUTATIONS)
def test_odd_values_are_never_accepted_differently(field: str, value: Any) -> None:
    body = dict(BASE)
    if value is ...:
        del body[field]
    else:
        body[field] = value
    payload = json.dumps(body).encode()
    fast = fast_row(payload, APPEND_MS)
    contract = contract_row(payload)
    if fast is not None:
        assert contract is not None, f"fast path accepted what the contract rejects: {body}"
        assert same(fast, contract), (fast, contract)


@pytest.mark.parametrize(
    "payload", [b"", b"{", b"[]", b"null", b'"x"', b"\xff", b'{"amount": NaN}', b"{}"]
)
def test_not_an_object_goes_to_the_contract(payload: bytes) -> None:
    assert fast_row(payload, APPEND_MS) is None
