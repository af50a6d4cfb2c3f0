"""The fraud scenarios: what each attack looks like, built so that the rule aimed at it fires.

Each builder turns (account, start time) into an `Episode`: its transactions and the time until
which the account must stay free of legitimate traffic, so that a normal purchase never breaks
a pattern (card testing needs consecutive small charges) nor makes a legitimate transaction look
fraudulent (the owner paying at home right after a cloned card was used 2,000 km away).

The thresholds below mirror the rules' default parameters (rules/sql/*.sql).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from streamguard.domain.models import Channel
from streamguard.generate import clock
from streamguard.generate.defaults import (
    ACCOUNT_TAKEOVER,
    BLOCKLIST,
    CARD_SMALL_MAX_BRL,
    CARD_TESTING,
    FRAUD_SCENARIOS,
    HIGH_AMOUNT,
    IMPOSSIBLE_TRAVEL,
    LEGIT,
    NIGHT_SPENDING,
    SCENARIOS,
    VELOCITY_BURST,
)
from streamguard.generate.geo import CITIES, distance_matrix_km
from streamguard.generate.merchants import CATEGORIES, CHANNELS, category_index
from streamguard.generate.population import Place, Population, brazilian_ip, new_device_id

PIX = CHANNELS.index(Channel.PIX)
CREDIT = CHANNELS.index(Channel.CREDIT)

CODE = {name: code for code, name in enumerate(SCENARIOS)}

# The rules' defaults, which the scenarios are built to cross (or to stay clear of).
HIGH_AMOUNT_BRL = 3000
VELOCITY_MAX_COUNT = 3
VELOCITY_WINDOW_S = 60
CARD_LARGE_MIN_BRL = 1000
CARD_WINDOW_S = 600
CARD_MIN_SMALL = 3
#: The bench's short card tests (GeneratorConfig.short_card_tests): every gap 21-23 s, so any
#: four transactions span more than 60 s (HIGH_VELOCITY's window is exclusive) with room for
#: the few ms a fraud transaction may wait for a free slot.
SHORT_CARD_GAP_S = (21.0, 23.0)
MAX_SPEED_KMH = 900
NIGHT_MIN_BRL = 1000
#: A far city for takeover and impossible travel is at least this far from home.
FAR_KM = 1000
#: After leaving home, the owner's next legitimate transaction waits until the trip back would
#: be slower than this: half the rule's speed, so no legitimate transaction looks impossible.
RETURN_SPEED_KMH = MAX_SPEED_KMH / 2

#: The mean number of fraudulent transactions per episode, for turning a share of transactions
#: into a number of episodes. Checked against the builders by a unit test.
MEAN_FRAUD_TX: dict[str, float] = {
    HIGH_AMOUNT: 1.0,
    VELOCITY_BURST: 7.0,
    CARD_TESTING: 5.0,
    ACCOUNT_TAKEOVER: 2.0,
    IMPOSSIBLE_TRAVEL: 1.0,
    NIGHT_SPENDING: 1.5,
    BLOCKLIST: 1.25,
}
#: The same with the bench's short card tests: 3 charges and the cash-out.
SHORT_CARD_TESTING_TX = 4.0


@dataclass(slots=True)
class Event:
    """One transaction of an episode. `place` None means home city, main device."""

    ts_ms: int
    account: int
    cents: int
    channel: int
    merchant: int
    scenario: int
    place: Place | None = None


@dataclass
class Episode:
    """An attack: its transactions, and until when its account gets no legitimate traffic."""

    scenario: str
    account: int
    events: list[Event] = field(default_factory=list)
    quiet_until_ms: int = 0


class ScenarioKit:
    """What the builders draw from: the population, the merchants by category, the distances."""

    def __init__(self, population: Population, rng: np.random.Generator):
        self.population = population
        self.rng = rng
        self.distances = distance_matrix_km()
        self.far_cities = [np.nonzero(row >= FAR_KM)[0] for row in self.distances]
        self.by_category: list[list[int]] = [[] for _ in CATEGORIES]
        for index, merchant in enumerate(population.merchants):
            if merchant.category >= 0:
                self.by_category[merchant.category].append(index)
        self.blocked_merchants = list(
            range(population.blocked_merchant_start, len(population.merchants))
        )
        self.mules = list(range(population.size, population.total))

    def cents(self, low_brl: float, high_brl: float) -> int:
        """A log-uniform amount between the bounds, in centavos."""
        value = np.exp(self.rng.uniform(np.log(low_brl), np.log(high_brl)))
        return max(1, int(round(value * 100)))

    def merchant(self, *keys: str) -> int:
        """A merchant from one of the categories named."""
        category = category_index(keys[int(self.rng.integers(len(keys)))])
        pool = self.by_category[category]
        return pool[int(self.rng.integers(len(pool)))]

    def channel(self, **weights: float) -> int:
        """A channel by name weights, e.g. channel(PIX=0.7, CREDIT=0.3)."""
        names = [channel.name for channel in CHANNELS]
        probs = np.array([weights.get(name, 0.0) for name in names])
        return int(self.rng.choice(len(names), p=probs / probs.sum()))

    def far_city(self, home: int) -> int:
        """A city at least FAR_KM from `home`."""
        options = self.far_cities[home]
        return int(options[int(self.rng.integers(len(options)))])

    def stranger(self, city: int) -> Place:
        """A device and IP the account has never used, in `city`."""
        return Place(city, new_device_id(self.rng), brazilian_ip(self.rng))

    def gap_ms(self, low_s: float, high_s: float) -> int:
        """A uniform gap between the bounds, in ms."""
        return int(self.rng.uniform(low_s, high_s) * 1000)

    def return_ms(self, home: int, away: int) -> int:
        """How long the owner stays quiet after a transaction in `away`."""
        return int(self.distances[home, away] / RETURN_SPEED_KMH * 3_600_000) + 60_000


def high_amount(kit: ScenarioKit, account: int, start: int) -> Episode:
    """One purchase or transfer well above R$ 3,000, at home, from a usual device."""
    key = ("electronics", "jewelry", "transfer", "airline", "department_store")
    merchant = kit.merchant(*key)
    channel = (
        kit.channel(PIX=0.8, TED=0.2)
        if kit.population.merchants[merchant].mcc == "4829"
        else kit.channel(CREDIT=0.7, PIX=0.3)
    )
    event = Event(start, account, kit.cents(3500, 25000), channel, merchant, CODE[HIGH_AMOUNT])
    return Episode(HIGH_AMOUNT, account, [event], start + VELOCITY_WINDOW_S * 1000)


def velocity_burst(kit: ScenarioKit, account: int, start: int) -> Episode:
    """A bot: 5 to 9 small purchases 2-8 s apart from a new device (the 4th trips the rule)."""
    home = int(kit.population.home_city[account])
    bot = kit.stranger(home)
    events, ts = [], start
    for _ in range(int(kit.rng.integers(5, 10))):
        merchant = kit.merchant("marketplace", "digital_goods", "fast_food")
        channel = kit.channel(CREDIT=0.7, PIX=0.3)
        events.append(
            Event(ts, account, kit.cents(20, 350), channel, merchant, CODE[VELOCITY_BURST], bot)
        )
        ts += kit.gap_ms(2, 8)
    return Episode(VELOCITY_BURST, account, events, events[-1].ts_ms + VELOCITY_WINDOW_S * 1000)


def card_testing(kit: ScenarioKit, account: int, start: int) -> Episode:
    """3-5 charges under R$ 10, 21-35 s apart, then one of R$ 1,200-2,900, all within 4 min.

    The gaps keep any four of them more than 60 s apart: it is CARD_TESTING, not a burst."""
    return _card_test(kit, account, start, (3, 5), (21, 35), (0, 25))


def short_card_testing(kit: ScenarioKit, account: int, start: int) -> Episode:
    """The bench's card test: 3 charges under R$ 10, 21-23 s apart, then R$ 1,200-2,900 21-23 s
    after the last: 63-69 s from the first charge to the cash-out.

    As short as a card test gets and stays clear of HIGH_VELOCITY: CARD_TESTING needs 3 small
    charges and the large one, and four transactions less than 60 s apart are a burst. So an
    episode fits a bench step (warm-up and measured window) instead of outlasting it."""
    tests = (CARD_MIN_SMALL, CARD_MIN_SMALL)
    return _card_test(kit, account, start, tests, SHORT_CARD_GAP_S, (0, 0))


def _card_test(
    kit: ScenarioKit,
    account: int,
    start: int,
    tests: tuple[int, int],
    gap_s: tuple[float, float],
    extra_s: tuple[float, float],
) -> Episode:
    """`tests` (at least, at most) small charges `gap_s` apart, then the cash-out one more gap
    plus `extra_s` after the last."""
    home = int(kit.population.home_city[account])
    fraudster = kit.stranger(home)
    events, ts = [], start
    for _ in range(int(kit.rng.integers(tests[0], tests[1] + 1))):
        merchant = kit.merchant("digital_goods", "marketplace")
        cents = int(kit.rng.integers(50, CARD_SMALL_MAX_BRL * 100))
        events.append(Event(ts, account, cents, CREDIT, merchant, CODE[CARD_TESTING], fraudster))
        ts += kit.gap_ms(*gap_s)
    ts += kit.gap_ms(*extra_s)
    merchant = kit.merchant("electronics", "marketplace")
    events.append(
        Event(ts, account, kit.cents(1200, 2900), CREDIT, merchant, CODE[CARD_TESTING], fraudster)
    )
    return Episode(CARD_TESTING, account, events, ts + VELOCITY_WINDOW_S * 1000)


def account_takeover(kit: ScenarioKit, account: int, start: int) -> Episode:
    """A new device in a city 1,000+ km away drains the account: 1-3 transfers of R$ 3,200+."""
    home = int(kit.population.home_city[account])
    away = kit.far_city(home)
    intruder = kit.stranger(away)
    events, ts = [], start
    for _ in range(int(kit.rng.integers(1, 4))):
        channel = kit.channel(PIX=0.8, TED=0.2)
        merchant = kit.merchant("transfer")
        events.append(
            Event(
                ts,
                account,
                kit.cents(3200, 9500),
                channel,
                merchant,
                CODE[ACCOUNT_TAKEOVER],
                intruder,
            )
        )
        ts += kit.gap_ms(30, 120)
    last = events[-1].ts_ms
    return Episode(ACCOUNT_TAKEOVER, account, events, last + kit.return_ms(home, away))


def impossible_travel(kit: ScenarioKit, account: int, start: int) -> Episode:
    """The owner pays at home (a legit anchor), then a cloned card pays 1,000+ km away so soon
    that the trip would take at least twice the rule's 900 km/h (within 30 s to 5 min)."""
    pop = kit.population
    home = int(pop.home_city[account])
    anchor_merchant = kit.merchant("grocery", "fast_food", "pharmacy", "bakery")
    anchor = Event(
        start,
        account,
        kit.cents(15, 200),
        kit.channel(DEBIT=0.5, PIX=0.5),
        anchor_merchant,
        CODE[LEGIT],
    )
    away = kit.far_city(home)
    fastest_s = kit.distances[home, away] / (2 * MAX_SPEED_KMH) * 3600
    ts = start + kit.gap_ms(30, min(300.0, fastest_s))
    merchant = kit.merchant("grocery", "electronics", "clothing", "department_store", "fuel")
    clone = Event(
        ts,
        account,
        kit.cents(80, 900),
        kit.channel(CREDIT=0.7, DEBIT=0.3),
        merchant,
        CODE[IMPOSSIBLE_TRAVEL],
        kit.stranger(away),
    )
    return Episode(IMPOSSIBLE_TRAVEL, account, [anchor, clone], ts + kit.return_ms(home, away))


def night_spending(kit: ScenarioKit, account: int, start: int) -> Episode:
    """1-2 payments of R$ 1,200-2,900 at night from the owner's phone (stolen, or a kidnapping).

    `start` must be at night; a second payment that would fall after 06:00 is not made."""
    events: list[Event] = []
    ts = start
    for _ in range(int(kit.rng.integers(1, 3))):
        if events and not clock.is_night(ts):
            break
        merchant = kit.merchant("transfer", "electronics", "marketplace")
        channel = (
            kit.channel(PIX=0.85, TED=0.15)
            if kit.population.merchants[merchant].mcc == "4829"
            else kit.channel(CREDIT=0.6, PIX=0.4)
        )
        events.append(
            Event(ts, account, kit.cents(1200, 2900), channel, merchant, CODE[NIGHT_SPENDING])
        )
        ts += kit.gap_ms(120, 600)
    return Episode(NIGHT_SPENDING, account, events, events[-1].ts_ms + VELOCITY_WINDOW_S * 1000)


def blocklist_hit(kit: ScenarioKit, account: int, start: int) -> Episode:
    """A known mule moves money (1-2 PIX), or a customer pays a blocklisted shop.

    `account` is used for the shop case; the mule case picks a mule (see `pick_account`)."""
    events: list[Event] = []
    if account >= kit.population.size:  # a mule
        ts = start
        for _ in range(int(kit.rng.integers(1, 3))):
            merchant = kit.merchant("transfer")
            events.append(Event(ts, account, kit.cents(200, 2500), PIX, merchant, CODE[BLOCKLIST]))
            ts += kit.gap_ms(30, 300)
    else:
        merchant = kit.blocked_merchants[int(kit.rng.integers(len(kit.blocked_merchants)))]
        channel = kit.channel(PIX=0.6, CREDIT=0.4)
        events = [Event(start, account, kit.cents(50, 900), channel, merchant, CODE[BLOCKLIST])]
    return Episode(BLOCKLIST, account, events, events[-1].ts_ms + VELOCITY_WINDOW_S * 1000)


Builder = Callable[[ScenarioKit, int, int], Episode]

BUILDERS: dict[str, Builder] = {
    HIGH_AMOUNT: high_amount,
    VELOCITY_BURST: velocity_burst,
    CARD_TESTING: card_testing,
    ACCOUNT_TAKEOVER: account_takeover,
    IMPOSSIBLE_TRAVEL: impossible_travel,
    NIGHT_SPENDING: night_spending,
    BLOCKLIST: blocklist_hit,
}


def catalogue(*, short_card_tests: bool = False) -> tuple[dict[str, Builder], dict[str, float]]:
    """The builders and their mean fraud transactions per episode; the bench's variant swaps in
    `short_card_testing`."""
    builders, means = dict(BUILDERS), dict(MEAN_FRAUD_TX)
    if short_card_tests:
        builders[CARD_TESTING] = short_card_testing
        means[CARD_TESTING] = SHORT_CARD_TESTING_TX
    return builders, means


def wants_mule(kit: ScenarioKit, scenario: str) -> bool:
    """Half of the blocklist episodes are a mule's own transfers."""
    return scenario == BLOCKLIST and bool(kit.rng.random() < 0.5)


def describe(scenario: str) -> str:
    """The first line of the scenario builder's docstring, for menus and help."""
    doc = BUILDERS[scenario].__doc__ or ""
    return " ".join(doc.split("\n\n")[0].split())


__all__ = [
    "SCENARIOS",
    "FRAUD_SCENARIOS",
    "CODE",
    "BUILDERS",
    "Episode",
    "Event",
    "ScenarioKit",
    "CITIES",
]
