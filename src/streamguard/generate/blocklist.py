"""The blocklist scenario's known-bad accounts (mules) and merchants, as fixed constants.

They do not depend on any seed, so the decision service's lists can be loaded once
(`streamguard generate blocklist | ...` or `blocked_ids()`) and hold for every run. The mule
accounts are not part of the population: every transaction they make is fraud. The blocked
merchants only ever receive fraud.
"""

from __future__ import annotations

#: Mule accounts known to the bank's blocklist; ids never collide with the population's ACC…
BLOCKED_ACCOUNTS: tuple[str, ...] = tuple(f"MULE{index:05d}" for index in range(1, 21))

#: Fraudulent shops (id, name, MCC) that the blocklist names.
BLOCKED_MERCHANT_ROWS: tuple[tuple[str, str, str], ...] = (
    ("MBLK0001", "Loja Relâmpago Ofertas", "5399"),
    ("MBLK0002", "Mega Promoções Online", "5399"),
    ("MBLK0003", "Eletro Barato Express", "5732"),
    ("MBLK0004", "Pix Premiado Serviços", "4829"),
    ("MBLK0005", "Celulares Importados Já", "5732"),
    ("MBLK0006", "Bet Fácil Pagamentos", "7995"),
    ("MBLK0007", "Cashback Turbo Digital", "5818"),
    ("MBLK0008", "Outlet das Marcas Oficial", "5651"),
)
BLOCKED_MERCHANTS: tuple[str, ...] = tuple(row[0] for row in BLOCKED_MERCHANT_ROWS)


def blocked_ids(seed: int | None = None) -> dict[str, tuple[str, ...]]:
    """The blocklist by entity type (the list_entries entity_type values); `seed` is ignored."""
    del seed  # fixed on purpose: the lists must match every run
    return {"ACCOUNT": BLOCKED_ACCOUNTS, "MERCHANT": BLOCKED_MERCHANTS}
