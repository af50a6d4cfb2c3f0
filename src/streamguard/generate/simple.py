"""A small steady stream of plausible transactions: enough for ./start.sh to show the pipeline."""

from __future__ import annotations

import random
import signal
import time
import uuid
from decimal import Decimal

from confluent_kafka import Producer

from streamguard.config import Settings
from streamguard.domain.models import Channel, Transaction
from streamguard.kafka import topics
from streamguard.kafka.client import producer_config

_CITIES = [
    ("São Paulo", "SP", -23.5505, -46.6333),
    ("Rio de Janeiro", "RJ", -22.9068, -43.1729),
    ("Belo Horizonte", "MG", -19.9167, -43.9345),
    ("Curitiba", "PR", -25.4284, -49.2733),
    ("Recife", "PE", -8.0476, -34.8770),
    ("Porto Alegre", "RS", -30.0346, -51.2177),
]
_MERCHANTS = [
    ("M001", "Magazine Luiza", "5311"),
    ("M002", "Mercado Livre", "5399"),
    ("M003", "iFood", "5812"),
    ("M004", "Posto Ipiranga", "5541"),
    ("M005", "Drogasil", "5912"),
    ("M006", "Americanas", "5311"),
]


def random_transaction(rng: random.Random, accounts: int = 500) -> Transaction:
    """One transaction from a small fixed population; about 1 in 200 is over R$ 3,000."""
    account = rng.randrange(accounts)
    city, state, lat, lon = _CITIES[account % len(_CITIES)]
    merchant_id, merchant_name, mcc = rng.choice(_MERCHANTS)
    amount = rng.uniform(3500, 9000) if rng.random() < 0.005 else rng.lognormvariate(4.0, 1.0)
    return Transaction(
        transaction_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        account_id=f"ACC{account:06d}",
        card_token=f"tok_{account:08x}",
        card_last4=f"{account % 10000:04d}",
        amount=Decimal(f"{min(amount, 50_000):.2f}"),
        channel=rng.choice(list(Channel)),
        merchant_id=merchant_id,
        merchant_name=merchant_name,
        merchant_mcc=mcc,
        city=city,
        state=state,
        lat=lat,
        lon=lon,
        device_id=f"dev-{account:06d}",
        ip_address=f"189.{account % 256}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        ts_ms=int(time.time() * 1000),
    )


def stream(settings: Settings, *, rate: int, seed: int | None = None) -> None:
    """Produce `rate` transactions per second until SIGINT or SIGTERM."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rng = random.Random(seed)
    producer = Producer(producer_config(settings))
    interval = 1.0 / max(rate, 1)
    next_at = time.monotonic()
    while not stopping:
        tx = random_transaction(rng)
        producer.produce(topics.TRANSACTIONS, key=tx.account_id, value=tx.to_wire())
        producer.poll(0)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    producer.flush(30)
