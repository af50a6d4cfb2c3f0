"""Spending categories (MCC), their amount distributions and channels, and the merchants.

Amounts are log-normal per category: `median_brl` is the median for an average account and
`sigma` the spread of the log. `day`/`night` weight how often a category is used by day and
between 22:00 and 06:00 (São Paulo time): at night people order food and rides, they do not pay
utility bills. Merchants are the big Brazilian brands plus local businesses named by Faker.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from faker import Faker

from streamguard.domain.models import Channel, PayeeKeyType

#: The channel order used for every weight vector and index in the generator.
CHANNELS: tuple[Channel, ...] = (
    Channel.PIX,
    Channel.CREDIT,
    Channel.DEBIT,
    Channel.BOLETO,
    Channel.TED,
)


@dataclass(frozen=True)
class Category:
    """A merchant category: MCC, amount distribution, channel mix and time-of-day weights."""

    key: str
    mcc: str
    median_brl: float
    sigma: float
    channels: tuple[float, float, float, float, float]  # PIX, CREDIT, DEBIT, BOLETO, TED
    day: float
    night: float
    brands: tuple[str, ...] = ()
    locals_: int = 30  # local merchants named by Faker


CATEGORIES: tuple[Category, ...] = (
    Category(
        "grocery",
        "5411",
        120,
        0.8,
        (0.30, 0.35, 0.35, 0, 0),
        18,
        2,
        ("Carrefour", "Pão de Açúcar", "Assaí Atacadista", "Atacadão", "Extra", "Dia"),
    ),
    Category(
        "restaurant",
        "5812",
        70,
        0.6,
        (0.25, 0.45, 0.30, 0, 0),
        10,
        4,
        ("Outback Steakhouse", "Coco Bambu", "Madero", "Spoleto"),
    ),
    Category(
        "fast_food",
        "5814",
        45,
        0.5,
        (0.30, 0.50, 0.20, 0, 0),
        12,
        30,
        ("iFood", "McDonald's", "Burger King", "Habib's", "Rappi"),
    ),
    Category(
        "fuel",
        "5541",
        150,
        0.5,
        (0.20, 0.40, 0.40, 0, 0),
        8,
        4,
        ("Posto Ipiranga", "Shell", "Petrobras BR"),
    ),
    Category(
        "pharmacy",
        "5912",
        60,
        0.7,
        (0.25, 0.40, 0.35, 0, 0),
        7,
        3,
        ("Drogasil", "Droga Raia", "Pague Menos", "Drogaria São Paulo"),
    ),
    Category(
        "department_store",
        "5311",
        180,
        0.9,
        (0.25, 0.55, 0.15, 0.05, 0),
        6,
        1,
        ("Magazine Luiza", "Americanas", "Casas Bahia"),
    ),
    Category(
        "marketplace",
        "5399",
        110,
        1.0,
        (0.35, 0.55, 0, 0.10, 0),
        10,
        14,
        ("Mercado Livre", "Shopee", "Amazon Brasil", "Shein", "AliExpress"),
    ),
    Category(
        "electronics",
        "5732",
        450,
        1.0,
        (0.25, 0.70, 0, 0.05, 0),
        3,
        1,
        ("Fast Shop", "KaBuM!", "Samsung Store"),
    ),
    Category(
        "clothing",
        "5651",
        160,
        0.7,
        (0.25, 0.55, 0.20, 0, 0),
        5,
        1,
        ("Renner", "C&A", "Riachuelo", "Centauro"),
    ),
    Category(
        "ride_hailing", "4121", 25, 0.5, (0.25, 0.60, 0.15, 0, 0), 8, 20, ("Uber", "99", "inDrive")
    ),
    Category(
        "utilities",
        "4900",
        180,
        0.6,
        (0.45, 0, 0, 0.55, 0),
        4,
        0,
        ("Enel", "Sabesp", "Cemig", "Light", "Copel"),
    ),
    Category(
        "telecom", "4814", 90, 0.4, (0.30, 0.30, 0, 0.40, 0), 3, 0, ("Vivo", "Claro", "TIM", "Oi")
    ),
    Category(
        "digital_goods",
        "5818",
        35,
        0.6,
        (0.15, 0.85, 0, 0, 0),
        3,
        10,
        ("Netflix", "Spotify", "Steam", "Google Play", "Apple"),
    ),
    Category("bar", "5813", 60, 0.7, (0.40, 0.35, 0.25, 0, 0), 4, 10, (), 40),
    Category("bakery", "5462", 18, 0.5, (0.45, 0.20, 0.35, 0, 0), 8, 1, (), 60),
    Category("airline", "4511", 700, 0.6, (0.20, 0.80, 0, 0, 0), 1, 0, ("LATAM", "GOL", "Azul")),
    Category("jewelry", "5944", 600, 0.8, (0.20, 0.80, 0, 0, 0), 0.5, 0, ("Vivara", "Pandora")),
    # Transfers to people: the "merchant" is the beneficiary, named by Faker.
    Category("transfer", "4829", 150, 1.1, (0.85, 0, 0, 0, 0.15), 10, 3, (), 0),
)

#: People who receive transfers (category "transfer"): a pool named by Faker.
TRANSFER_BENEFICIARIES = 400
#: How many times more often a brand is chosen than a local merchant of its category.
BRAND_WEIGHT = 4


@dataclass(frozen=True)
class Merchant:
    """A merchant as it appears on the wire: id, name, MCC, and its category's index."""

    merchant_id: str
    name: str
    mcc: str
    category: int


#: A person's PIX key, by beneficiary (transfers); a business is paid by CNPJ or a random key
#: (the key of a dynamic QR code).
_PERSON_KEYS = (PayeeKeyType.CPF, PayeeKeyType.PHONE, PayeeKeyType.EMAIL, PayeeKeyType.RANDOM)
_BUSINESS_KEYS = (PayeeKeyType.CNPJ, PayeeKeyType.RANDOM)


def payee_key_type(merchant: Merchant, channel: Channel) -> PayeeKeyType | None:
    """The PIX key type a payment to `merchant` uses: fixed per merchant, None off PIX."""
    if channel is not Channel.PIX:
        return None
    person = merchant.category >= 0 and CATEGORIES[merchant.category].key == "transfer"
    keys = _PERSON_KEYS if person else _BUSINESS_KEYS
    return keys[zlib.crc32(merchant.merchant_id.encode()) % len(keys)]


def category_index(key: str) -> int:
    """The index of the category called `key`."""
    for index, category in enumerate(CATEGORIES):
        if category.key == key:
            return index
    raise KeyError(key)


def build_merchants(faker: Faker) -> list[Merchant]:
    """Every merchant, brands first in a fixed order so their ids never move."""
    merchants: list[Merchant] = []

    def add(name: str, category: int) -> None:
        merchants.append(
            Merchant(f"M{len(merchants) + 1:06d}", name, CATEGORIES[category].mcc, category)
        )

    for index, category in enumerate(CATEGORIES):
        for brand in category.brands:
            add(brand, index)
    for index, category in enumerate(CATEGORIES):
        for _ in range(category.locals_):
            add(_local_name(faker, category.key), index)
    transfer = category_index("transfer")
    for _ in range(TRANSFER_BENEFICIARIES):
        add(f"PIX {faker.name()}", transfer)
    return merchants


_LOCAL_PREFIX = {
    "grocery": "Mercado",
    "restaurant": "Restaurante",
    "fast_food": "Lanchonete",
    "fuel": "Auto Posto",
    "pharmacy": "Farmácia",
    "department_store": "Lojas",
    "marketplace": "Loja Online",
    "electronics": "Eletrônicos",
    "clothing": "Boutique",
    "ride_hailing": "Táxi",
    "utilities": "Serviços",
    "telecom": "Telecom",
    "digital_goods": "App",
    "bar": "Bar",
    "bakery": "Padaria",
    "airline": "Viagens",
    "jewelry": "Joalheria",
}


def _local_name(faker: Faker, key: str) -> str:
    surname = faker.last_name()
    return f"{_LOCAL_PREFIX[key]} {surname} {faker.company_suffix()}".strip()
