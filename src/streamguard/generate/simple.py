"""Kept for callers of the walking skeleton's generator; use `streamguard.generate` instead."""

from __future__ import annotations

import random
import time
import uuid
from functools import lru_cache

from streamguard.domain.models import Transaction


@lru_cache(maxsize=4)
def _pool(accounts: int) -> tuple[Transaction, ...]:
    from streamguard.generate import sample_transactions

    return tuple(sample_transactions(4096, seed=0, accounts=accounts))


def random_transaction(rng: random.Random, accounts: int = 10_000) -> Transaction:
    """A transaction from the real generator's sample, with a fresh id and the current time."""
    template = rng.choice(_pool(accounts))
    return template.model_copy(
        update={
            "transaction_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "ts_ms": int(time.time() * 1000),
        }
    )
