"""The generator's defaults and scenario names, importable without numpy or Faker (the CLI)."""

from __future__ import annotations

DEFAULT_ACCOUNTS = 10_000
DEFAULT_POPULATION_SEED = 2024
DEFAULT_FRAUD_RATE = 0.01
LOCAL_TIME_ZONE = "America/Sao_Paulo"
#: A card test's small charges stay under this (CARD_TESTING's small_max_brl); its cash-out is
#: above R$ 1,000. The bench tells the two apart with it.
CARD_SMALL_MAX_BRL = 10

LEGIT = "legit"
HIGH_AMOUNT = "high_amount"
VELOCITY_BURST = "velocity_burst"
CARD_TESTING = "card_testing"
ACCOUNT_TAKEOVER = "account_takeover"
IMPOSSIBLE_TRAVEL = "impossible_travel"
NIGHT_SPENDING = "night_spending"
BLOCKLIST = "blocklist"

#: Every label's scenario; the index is the generator's scenario code (0 is legit).
SCENARIOS: tuple[str, ...] = (
    LEGIT,
    HIGH_AMOUNT,
    VELOCITY_BURST,
    CARD_TESTING,
    ACCOUNT_TAKEOVER,
    IMPOSSIBLE_TRAVEL,
    NIGHT_SPENDING,
    BLOCKLIST,
)
FRAUD_SCENARIOS: tuple[str, ...] = SCENARIOS[1:]
