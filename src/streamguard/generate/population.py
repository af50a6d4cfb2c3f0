"""The population: accounts with a home city, usual devices and a spending profile; merchants.

Built once per run from `population_seed`, so every mode (and a later `attack` on ACC000123)
sees the same accounts. Faker pt_BR only runs here, up front. Accounts are numpy columns (a
million of them take a second and ~60 MB); the wire JSON fragments that never change for an
account are rendered the first time the account transacts and kept, so the hot loop only glues
strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from faker import Faker

from streamguard.generate import blocklist
from streamguard.generate.defaults import DEFAULT_ACCOUNTS, DEFAULT_POPULATION_SEED
from streamguard.generate.geo import CITIES, population_weights
from streamguard.generate.merchants import (
    BRAND_WEIGHT,
    CATEGORIES,
    CHANNELS,
    Merchant,
    build_merchants,
    payee_key_type,
)

MAX_ACCOUNTS = 1_000_000
MAX_DEVICES = 3
#: Share of an account's transactions made from its first (main) device.
MAIN_DEVICE_SHARE = 0.8

# First octets of Brazilian ISPs' and mobile carriers' address blocks.
_BR_OCTETS = np.array([177, 179, 186, 187, 189, 191, 200, 201], dtype=np.uint32)


@dataclass(frozen=True)
class Place:
    """Where a transaction happens and from what: a city (index into CITIES), device and IP."""

    city: int
    device_id: str
    ip_address: str


def account_id(index: int) -> str:
    """The id of population account `index`: ACC000123."""
    return f"ACC{index:06d}"


def _ip(packed: int) -> str:
    return f"{packed >> 24}.{(packed >> 16) & 255}.{(packed >> 8) & 255}.{packed & 255}"


def brazilian_ip(rng: np.random.Generator) -> str:
    """A public IPv4 address in a Brazilian-looking block."""
    a = int(_BR_OCTETS[int(rng.integers(len(_BR_OCTETS)))])
    b, c, d = (int(x) for x in rng.integers(1, 255, 3))
    return f"{a}.{b}.{c}.{d}"


def new_device_id(rng: np.random.Generator) -> str:
    """A device id never given to a population account."""
    return f"dev-{int(rng.integers(0, 2**63)):016x}"


class _LazyStrings:
    """Strings computed by `make(index)` the first time they are asked for, then kept."""

    def __init__(self, size: int, make: Callable[[int], str]):
        self._values = np.empty(size, dtype=object)
        self._built = np.zeros(size, dtype=bool)
        self._make = make

    def take(self, index: np.ndarray) -> list[str]:
        """The strings at `index` (an int array), building the missing ones."""
        missing = index[~self._built[index]]
        if len(missing):
            for i in np.unique(missing).tolist():
                self._values[i] = self._make(i)
            self._built[missing] = True
        return self._values[index].tolist()

    def __getitem__(self, i: int) -> str:
        return self.take(np.array([i]))[0]


class Population:
    """Accounts (rows 0..size-1, then the blocklist's mules) and merchants, with wire fragments."""

    def __init__(self, size: int = DEFAULT_ACCOUNTS, seed: int = DEFAULT_POPULATION_SEED):
        if size < 1 or size > MAX_ACCOUNTS:
            raise ValueError(f"the population needs between 1 and {MAX_ACCOUNTS:,} accounts")
        self.size = size
        self.seed = seed
        rng = np.random.default_rng([seed, 1])
        faker = Faker("pt_BR")
        faker.seed_instance(seed)
        self.merchants: list[Merchant] = build_merchants(faker)
        self.blocked_merchant_start = len(self.merchants)
        for merchant_id, name, mcc in blocklist.BLOCKED_MERCHANT_ROWS:
            self.merchants.append(Merchant(merchant_id, name, mcc, -1))

        total = size + len(blocklist.BLOCKED_ACCOUNTS)
        self.total = total
        self.home_city = rng.choice(len(CITIES), size=total, p=population_weights())
        self._tokens = rng.integers(0, 2**63, total, dtype=np.int64)
        self._last4 = rng.integers(0, 10_000, total)
        self.n_devices = rng.choice([1, 2, 3], size=total, p=[0.5, 0.35, 0.15])
        self.n_devices[size:] = 1
        self._devices = rng.integers(0, 2**63, (total, MAX_DEVICES), dtype=np.int64)
        octets = rng.integers(1, 255, (total, MAX_DEVICES, 3)).astype(np.uint32)
        first = _BR_OCTETS[rng.integers(0, len(_BR_OCTETS), (total, MAX_DEVICES))]
        self._ips = (first << 24) | (octets[..., 0] << 16) | (octets[..., 1] << 8) | octets[..., 2]
        #: Spending level: multiplies every category's amounts (mean about 1).
        self.income = rng.lognormal(-0.08, 0.4, total)
        #: How busy each account is relative to the others (mean 1; mules are never picked).
        self.activity = rng.gamma(4.0, 0.25, size)
        self.activity_cum = np.cumsum(self.activity) / self.activity.sum()
        self._firsts = [faker.first_name() for _ in range(200)]
        self._lasts = [faker.last_name() for _ in range(200)]
        self._names = rng.integers(0, 200, (total, 3))
        self.account_fragments = _LazyStrings(total, self._account_fragment)
        self.place_fragments = _LazyStrings(total * MAX_DEVICES, self._place_fragment)
        self.keys = _LazyStrings(total, self.account_id)

    # -- one account ---------------------------------------------------------------------------

    def account_id(self, account: int) -> str:
        """The id of row `account` (a mule's id past the population)."""
        if account < self.size:
            return account_id(account)
        return blocklist.BLOCKED_ACCOUNTS[account - self.size]

    def account_index(self, name: str) -> int | None:
        """The row of an account id, or None if the population has no such account."""
        if name in blocklist.BLOCKED_ACCOUNTS:
            return self.size + blocklist.BLOCKED_ACCOUNTS.index(name)
        if len(name) == 9 and name.startswith("ACC") and name[3:].isdigit():
            index = int(name[3:])
            return index if index < self.size else None
        return None

    def card_token(self, account: int) -> str:
        """The account's card token (never a card number)."""
        return f"tok_{int(self._tokens[account]):016x}"

    def card_last4(self, account: int) -> str:
        """The last four digits of the account's card."""
        return f"{int(self._last4[account]):04d}"

    def devices(self, account: int) -> list[str]:
        """The account's usual devices (1 to 3), main one first."""
        return [
            f"dev-{int(x):016x}" for x in self._devices[account, : int(self.n_devices[account])]
        ]

    def holder_name(self, account: int) -> str:
        """The account holder's name (Faker pt_BR); never on the wire."""
        a, b, c = self._names[account].tolist()
        return f"{self._firsts[a]} {self._lasts[b]} {self._lasts[c]}"

    def place(self, account: int, slot: int) -> Place:
        """The account's home city with one of its usual devices."""
        return Place(
            int(self.home_city[account]),
            f"dev-{int(self._devices[account, slot]):016x}",
            _ip(int(self._ips[account, slot])),
        )

    # -- wire fragments ------------------------------------------------------------------------

    def place_fragment(self, place: Place) -> str:
        """The wire JSON from "city" to "ip_address", without braces."""
        city = CITIES[place.city]
        return (
            f'"city":{json.dumps(city.name)},"state":"{city.state}",'
            f'"lat":{city.lat!r},"lon":{city.lon!r},'
            f'"device_id":{json.dumps(place.device_id)},"ip_address":"{place.ip_address}"'
        )

    def _place_fragment(self, index: int) -> str:
        return self.place_fragment(self.place(index // MAX_DEVICES, index % MAX_DEVICES))

    def _account_fragment(self, account: int) -> str:
        return (
            f'"account_id":"{self.account_id(account)}","card_token":"{self.card_token(account)}"'
            f',"card_last4":"{self.card_last4(account)}"'
        )

    @cached_property
    def merchant_fragments(self) -> np.ndarray:
        """Per (merchant, channel), at index merchant * len(CHANNELS) + channel."""
        out: list[str] = []
        for merchant in self.merchants:
            tail = (
                f'"merchant_id":"{merchant.merchant_id}",'
                f'"merchant_name":{json.dumps(merchant.name)},"merchant_mcc":"{merchant.mcc}"'
            )
            for channel in CHANNELS:
                key = payee_key_type(merchant, channel)
                payee = f'"{key.value}"' if key else "null"
                out.append(f'"channel":"{channel.value}",{tail},"payee_key_type":{payee}')
        return np.array(out, dtype=object)

    @cached_property
    def merchants_by_category(self) -> np.ndarray:
        """A (categories, K) table of merchant indices; brands appear BRAND_WEIGHT times."""
        rows: list[list[int]] = []
        for index, category in enumerate(CATEGORIES):
            row: list[int] = []
            for m, merchant in enumerate(self.merchants):
                if merchant.category == index:
                    row.extend([m] * (BRAND_WEIGHT if merchant.name in category.brands else 1))
            rows.append(row)
        width = max(len(row) for row in rows)
        # Stretch every row to the same width by repeating it, keeping the proportions close.
        return np.array([[row[i * len(row) // width] for i in range(width)] for row in rows])
