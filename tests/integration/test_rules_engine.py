"""Every rule on the real Flink engine: one replay of a file that holds every edge case.

Each case is one account on its own day, so cases never share a window; they share only the
watermark, which moves forward day by day in file order. The alerts of each account are compared
with the exact set expected, so an alert too many fails as surely as one too few.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from streamguard.domain.original import parse_event_ms
from tests.stackfixture import with_classpath

pytestmark = pytest.mark.integration

#: Local midnight in São Paulo (UTC-3) on 2025-06-02; case k lives on day k after it.
MIDNIGHT_MS = 1_748_833_200_000
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
NOON_MS = 12 * HOUR_MS
WATERMARK_DELAY_S = 5
SAO_PAULO = (-23.5505, -46.6333)
RIO = (-22.9068, -43.1729)
RECIFE = (-8.0476, -34.8770)


#: A PIX transfer to a random key (the optional payee_key_type field).
PIX_RANDOM = {"channel": "PIX", "payee_key_type": "random"}

#: A message's fields beside id, account and amount, from its event time in epoch ms.
Shape = Callable[[int], dict[str, Any]]


def canonical(where: tuple[float, float] | None) -> Shape:
    """StreamGuard's own shape: `ts_ms`, and the location if there is one."""
    located = {"lat": where[0], "lon": where[1]} if where else {}
    return lambda ms: {**located, "ts_ms": ms}


def original(render: Callable[[int], str], **extra: Any) -> Shape:
    """The original system's shape: an ISO-8601 `timestamp`, `merchant`, `category`."""
    fields = {"merchant": "Loja X", "category": "electronics", **extra}
    return lambda ms: {"timestamp": render(ms), **fields}


def naive_utc(ms: int) -> str:
    """2025-06-02T15:00:00.250, UTC without saying so (the original's format)."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def at_offset(
    hours: int, fmt: str = "%Y-%m-%dT%H:%M:%S.%f%z", cut: int = 3
) -> Callable[[int], str]:
    """The same instant written in another zone, offset included (+05:30, -0300, ...)."""

    def render(ms: int) -> str:
        moment = datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=hours)))
        text = moment.strftime(fmt)
        digits = text.index(".") + 4 if "." in text else None
        return text[:digits] + text[digits + cut :] if digits else text

    return render


@dataclass
class Case:
    """One account's transactions (in arrival order) and the alerts they must raise."""

    name: str
    events: list[tuple[str, int, str, Shape]] = field(default_factory=list)
    expected: set[tuple[str, str]] = field(default_factory=set)

    def tx(
        self,
        label: str,
        at_ms: int,
        amount: str,
        where: tuple[float, float] | None = SAO_PAULO,
        *,
        shape: Shape | None = None,
    ) -> Case:
        self.events.append((label, at_ms, amount, shape or canonical(where)))
        return self

    def expect(self, rule_id: str, label: str) -> Case:
        self.expected.add((rule_id, f"{self.name}-{label}"))
        return self


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The same great-circle distance as IMPOSSIBLE_TRAVEL's SQL."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def burst(case: Case, offsets_s: list[float], amount: str = "20.00", start: int = NOON_MS) -> Case:
    for n, offset in enumerate(offsets_s, 1):
        case.tx(f"t{n}", start + int(offset * 1000), amount)
    return case


def travel_ms(speed_kmh: float, rounding) -> int:  # type: ignore[no-untyped-def]
    return int(rounding(haversine_km(SAO_PAULO, RIO) / speed_kmh * HOUR_MS))


def build_cases() -> list[Case]:
    c = [
        # HIGH_AMOUNT: over R$ 3,000.00, equality does not fire.
        Case("ha-equal").tx("t1", NOON_MS, "3000.00"),
        Case("ha-over").tx("t1", NOON_MS, "3000.01").expect("HIGH_AMOUNT", "t1"),
        # A PIX payment's evidence names the payee's key type (the walkthrough's field).
        Case("ha-pix")
        .tx("t1", NOON_MS, "3000.01", shape=lambda ms: {"ts_ms": ms, **PIX_RANDOM})
        .expect("HIGH_AMOUNT", "t1"),
        # HIGH_VELOCITY: more than 3 within 60 s, fired on the 4th transaction itself.
        burst(Case("hv-three"), [0, 10, 20]),
        burst(Case("hv-four"), [0, 10, 20, 30]).expect("HIGH_VELOCITY", "t4"),
        burst(Case("hv-five"), [0, 1, 2, 3, 4])
        .expect("HIGH_VELOCITY", "t4")
        .expect("HIGH_VELOCITY", "t5"),
        # 12:00:50 to 12:01:10: a burst across a minute boundary is one burst.
        burst(Case("hv-minute"), [50, 55, 65, 70]).expect("HIGH_VELOCITY", "t4"),
        # The window is exclusive: 59.999 s from first to 4th is within, exactly 60 s is not.
        burst(Case("hv-window-in"), [0, 20, 40, 59.999]).expect("HIGH_VELOCITY", "t4"),
        burst(Case("hv-window-edge"), [0, 20, 40, 60]),
        # Out of order within the watermark bound: t4 (+4 s) arrives after t3 (+6 s). In event
        # time t3 is the 4th transaction, so t3 fires, not the 4th to arrive.
        burst(Case("hv-out-of-order"), [0, 2, 6, 4]).expect("HIGH_VELOCITY", "t3"),
    ]
    # Late past the bound: the 4th arrives after the watermark passed it (pushed by t4 at
    # +100 s); windows skip it, so no HIGH_VELOCITY, but HIGH_AMOUNT still judges it.
    late = Case("hv-late").tx("t1", NOON_MS, "20.00").tx("t2", NOON_MS + 1000, "20.00")
    late.tx("t3", NOON_MS + 2000, "20.00").tx("t4", NOON_MS + 100_000, "20.00")
    late.tx("late", NOON_MS + 3000, "5000.00").expect("HIGH_AMOUNT", "late")
    c.append(late)
    # HIGH_VELOCITY_AMOUNT: over R$ 10,000.00 within 5 min; equality does not fire.
    hva_eq = Case("hva-equal")
    for n, amount in enumerate(["2500.00", "2500.00", "2500.00", "2500.00"], 1):
        hva_eq.tx(f"t{n}", NOON_MS + n * 60_000, amount)
    hva_over = Case("hva-over")
    for n, amount in enumerate(["2500.00", "2500.00", "2500.00", "2500.01"], 1):
        hva_over.tx(f"t{n}", NOON_MS + n * 60_000, amount)
    hva_over.expect("HIGH_VELOCITY_AMOUNT", "t4")
    # The window is exclusive, like HIGH_VELOCITY's: 299.999 s apart is within, 300 s is not.
    hva_in = Case("hva-window-in").tx("t1", NOON_MS, "6000.00")
    hva_in.tx("t2", NOON_MS + 299_999, "6000.00").expect("HIGH_VELOCITY_AMOUNT", "t2")
    hva_in.expect("HIGH_AMOUNT", "t1").expect("HIGH_AMOUNT", "t2")
    hva_apart = Case("hva-window-edge").tx("t1", NOON_MS, "6000.00")
    hva_apart.tx("t2", NOON_MS + 300_000, "6000.00")
    hva_apart.expect("HIGH_AMOUNT", "t1").expect("HIGH_AMOUNT", "t2")
    c += [hva_eq, hva_over, hva_in, hva_apart]
    # NIGHT_SPENDING: 22:00 to 06:00 São Paulo time, over R$ 1,000.00.
    c += [
        Case("ns-2159").tx("t1", 22 * HOUR_MS - 1, "1500.00"),
        Case("ns-2200").tx("t1", 22 * HOUR_MS, "1500.00").expect("NIGHT_SPENDING", "t1"),
        Case("ns-0559").tx("t1", 6 * HOUR_MS - 1, "1500.00").expect("NIGHT_SPENDING", "t1"),
        Case("ns-0600").tx("t1", 6 * HOUR_MS, "1500.00"),
        Case("ns-equal").tx("t1", 23 * HOUR_MS, "1000.00"),
        Case("ns-over").tx("t1", 23 * HOUR_MS, "1000.01").expect("NIGHT_SPENDING", "t1"),
    ]

    # CARD_TESTING: 3+ under R$ 10, then one over R$ 1,000, consecutive, within 10 min.
    def card(name: str, amounts: list[str], step_ms: int = 30_000) -> Case:
        case = Case(name)
        for n, amount in enumerate(amounts, 1):
            case.tx(f"t{n}", NOON_MS + n * step_ms, amount)
        return case

    c += [
        card("ct-three", ["1.00", "2.00", "9.99", "1500.00"]).expect("CARD_TESTING", "t4"),
        card("ct-four", ["1.00", "1.00", "1.00", "1.00", "1500.00"]).expect("CARD_TESTING", "t5"),
        card("ct-two", ["1.00", "1.00", "1500.00"]),
        card("ct-broken", ["1.00", "1.00", "80.00", "1.00", "1500.00"]),
        card("ct-small-equal", ["10.00", "10.00", "10.00", "1500.00"]),
        card("ct-large-equal", ["1.00", "1.00", "1.00", "1000.00"]),
        # first small at +0, large at +600.001 s: outside the 10-minute pattern window
        card("ct-too-slow", ["1.00", "1.00", "1.00", "1500.00"], step_ms=200_001),
    ]
    # The 3rd small one (t4, +90 s) arrives after the large one (t3, +92 s), within the bound.
    ct_ooo = card("ct-out-of-order", ["1.00", "1.00"])
    ct_ooo.tx("t3", NOON_MS + 92_000, "1500.00").tx("t4", NOON_MS + 90_000, "1.00")
    c.append(ct_ooo.expect("CARD_TESTING", "t3"))
    # IMPOSSIBLE_TRAVEL: São Paulo to Rio (~360 km) just under and just over 900 km/h.
    under = Case("it-under").tx("t1", NOON_MS, "50.00", SAO_PAULO)
    under.tx("t2", NOON_MS + travel_ms(899.0, math.ceil), "50.00", RIO)
    over = Case("it-over").tx("t1", NOON_MS, "50.00", SAO_PAULO)
    over.tx("t2", NOON_MS + travel_ms(901.0, math.floor), "50.00", RIO)
    over.expect("IMPOSSIBLE_TRAVEL", "t2")
    same_time = Case("it-same-instant").tx("t1", NOON_MS, "50.00", SAO_PAULO)
    same_time.tx("t2", NOON_MS, "50.00", RECIFE).expect("IMPOSSIBLE_TRAVEL", "t2")
    # Only consecutive transactions count: Rio sits between São Paulo and Recife in time.
    hops = Case("it-consecutive").tx("t1", NOON_MS, "50.00", SAO_PAULO)
    hops.tx("t2", NOON_MS + 2 * HOUR_MS, "50.00", RIO)
    hops.tx("t3", NOON_MS + 3 * HOUR_MS, "50.00", RECIFE).expect("IMPOSSIBLE_TRAVEL", "t3")
    c += [under, over, same_time, hops]
    # A transaction without a location is unknown, not at (0, 0): it is neither compared nor
    # the next one's previous place. Were it at (0, 0), t2 and t3 would both fire.
    unlocated = Case("it-unlocated").tx("t1", NOON_MS, "50.00", SAO_PAULO)
    unlocated.tx("t2", NOON_MS + 60_000, "50.00", None)
    unlocated.tx("t3", NOON_MS + 120_000, "50.00", SAO_PAULO)
    c.append(unlocated)
    c += original_shape_cases()
    return c


def original_shape_cases() -> list[Case]:
    """The original system's messages: the same rules fire, at the same event time."""
    naive = Case("orig-naive").tx("t1", NOON_MS, "3500.00", shape=original(naive_utc))
    offset = Case("orig-offset").tx("t1", NOON_MS, "3500.00", shape=original(at_offset(-3)))
    velocity = Case("orig-velocity")
    for n, render in enumerate([naive_utc, at_offset(5), at_offset(-3), naive_utc], 1):
        velocity.tx(f"t{n}", NOON_MS + n * 1_000, "20.00", shape=original(render))
    # Every timestamp form both halves accept, each at its own hour: naive with a space and no
    # fraction, 9 fraction digits, Z, +0500 without a colon, -03:00 with one; the alert's event
    # time is checked against domain/original.py's parse of the same text.
    forms = Case("orig-forms")
    renders: list[Callable[[int], str]] = [
        lambda ms: naive_utc(ms).replace("T", " ")[:19],
        lambda ms: naive_utc(ms) + "999999",
        lambda ms: naive_utc(ms) + "Z",
        at_offset(5, "%Y-%m-%dT%H:%M:%S%z"),
        lambda ms: at_offset(-3)(ms)[:-2] + ":" + at_offset(-3)(ms)[-2:],
    ]
    for n, render in enumerate(renders, 1):
        forms.tx(f"t{n}", NOON_MS + n * 3_600_000, "3100.00", shape=original(render))
        forms.expect("HIGH_AMOUNT", f"t{n}")
    # Not a timestamp either half reads: no alert (the decision service dead-letters them).
    bad = Case("orig-bad")
    for n, text in enumerate(["2025-02-30T12:00:00", "2025-06-02T12:00", "yesterday", ""], 1):
        bad.tx(f"t{n}", NOON_MS, "9000.00", shape=lambda ms, t=text: {"timestamp": t})
    bad.tx("t5", NOON_MS, "9000.00", shape=lambda ms: {"timestamp": naive_utc(ms) + "+19:00"})
    return [
        naive.expect("HIGH_AMOUNT", "t1"),
        offset.expect("HIGH_AMOUNT", "t1"),
        velocity.expect("HIGH_VELOCITY", "t4"),
        forms,
        bad,
    ]


MALFORMED_LINES = [
    "this is not json",
    '{"transaction_id": "bad-1", "account_id": "bad", "amount": "lots", "ts_ms": 1}',
    '{"transaction_id": "bad-2", "account_id": "bad", "amount": 9999.0}',
    '{"account_id": "bad", "amount": 9999.0, "ts_ms": 1748833200000}',
    "",
]


def write_cases(cases: list[Case], path: Path) -> None:
    lines = []
    for day, case in enumerate(cases):
        base = MIDNIGHT_MS + day * DAY_MS
        for label, at_ms, amount, shape in case.events:
            rest = json.dumps(shape(base + at_ms))[1:]
            lines.append(
                f'{{"transaction_id": "{case.name}-{label}", "account_id": "{case.name}",'
                f' "amount": {amount}, {rest}'
            )
        lines.append(MALFORMED_LINES[day % len(MALFORMED_LINES)])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


CASES = build_cases()


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Replay every case through `streamguard rules replay`, once."""
    folder = tmp_path_factory.mktemp("rules")
    source, output = folder / "cases.jsonl", folder / "alerts.jsonl"
    write_cases(CASES, source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")}
    env.update(
        {
            "STREAMGUARD_STATE_DIR": str(with_classpath(folder / "state")),
            "STREAMGUARD_WATERMARK_DELAY_S": str(WATERMARK_DELAY_S),
            "STREAMGUARD_IDLE_TIMEOUT_S": "1",
            "STREAMGUARD_FLINK_HEAP_MB": "512",
            "STREAMGUARD_LOCAL_TIME_ZONE": "America/Sao_Paulo",
        }
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamguard.cli.main",
            "rules",
            "replay",
            str(source),
            "-o",
            str(output),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in output.read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_rule_case(case: Case, alerts: list[dict]) -> None:
    fired = {(a["rule_id"], a["transaction_id"]) for a in alerts if a["account_id"] == case.name}
    assert fired == case.expected


def test_alert_ids_are_rule_and_transaction(alerts: list[dict]) -> None:
    assert alerts
    for alert in alerts:
        assert alert["alert_id"] == f"{alert['rule_id']}:{alert['transaction_id']}"
    assert len({a["alert_id"] for a in alerts}) == len(alerts)


def test_alerts_carry_event_time_and_evidence(alerts: list[dict]) -> None:
    sent, stamps = {}, {}
    for day, case in enumerate(CASES):
        for label, at_ms, amount, shape in case.events:
            ms = MIDNIGHT_MS + day * DAY_MS + at_ms
            sent[f"{case.name}-{label}"] = (ms, amount)
            stamps[f"{case.name}-{label}"] = shape(ms).get("timestamp")
    by_id = {a["alert_id"]: a for a in alerts}
    for alert in alerts:
        ts_ms, amount = sent[alert["transaction_id"]]
        stamp = stamps[alert["transaction_id"]]
        # the rules' PARSE_EVENT_MS and decide's parse agree on every original timestamp
        assert alert["ts_ms"] == (ts_ms if stamp is None else parse_event_ms(stamp)), stamp
        assert alert["ts_ms"] == ts_ms
        assert alert["amount"] == amount
    assert by_id["HIGH_AMOUNT:ha-pix-t1"]["evidence"]["payee_key_type"] == "random"
    assert "payee_key_type" not in by_id["HIGH_AMOUNT:ha-over-t1"]["evidence"]
    # The evidence is the whole window at t5: all five transactions, 4 s from first to last.
    assert by_id["HIGH_VELOCITY:hv-five-t5"]["evidence"] == {
        "count": "5",
        "first_transaction_id": "hv-five-t1",
        "span_ms": "4000",
        "window_s": "60",
    }
    assert by_id["HIGH_VELOCITY_AMOUNT:hva-over-t4"]["evidence"]["sum_brl"] == "10000.01"
    card = by_id["CARD_TESTING:ct-four-t5"]["evidence"]
    assert (card["small_count"], card["small_sum_brl"]) == ("4", "4.00")
    night = by_id["NIGHT_SPENDING:ns-2200-t1"]["evidence"]
    assert night["local_time"].endswith(" 22:00:00")
    travel = by_id["IMPOSSIBLE_TRAVEL:it-over-t2"]["evidence"]
    assert 900 < float(travel["speed_kmh"]) < 902
    assert travel["previous_transaction_id"] == "it-over-t1"
    assert abs(float(travel["distance_km"]) - haversine_km(SAO_PAULO, RIO)) < 0.1


#: The late-event policy (rules/README.md): stateless rules judge every event, windows and
#: patterns only on-time ones.
STATELESS = {"HIGH_AMOUNT", "NIGHT_SPENDING"}


def test_stateful_rules_read_only_on_time_events() -> None:
    """Checked on Flink's plan, so a join or a subquery on `transactions` is seen too."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.rules_plan"],
        env={k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sources = json.loads(result.stdout)
    assert set(sources) >= STATELESS and len(sources) > len(STATELESS)
    for rule_id, scanned in sources.items():
        wanted = "transactions_raw" if rule_id in STATELESS else "transactions_raw_on_time"
        assert scanned == [wanted], rule_id
