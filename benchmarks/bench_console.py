"""The console at scale (a script, not a test). Prints figures; run it under both locks:

    flock /tmp/streamguard-bench.lock flock /tmp/streamguard-itest.lock \
        .venv/bin/python benchmarks/bench_console.py [--tx 10000000] [--requests 50]

1. fill: a private stack (PostgreSQL, Kafka, the rules job, the decision service, the console
   on free ports), then --tx transactions written by SQL `generate_series` straight into the
   ledger, spread over the last --days days, with alerts on 1% (by rule in the generator's
   proportions), a decision on each alerted one (70% REVIEW, 20% BLOCK, 10% APPROVE), a
   history version each, labels for the alerted ones and resolved cases for 5% of the REVIEWs.
2. pages and API: p50 / p95 / max of every page and API call over --requests requests each,
   one at a time (after one warm-up request, which is reported on its own), and the plans of
   the timed queue statements (EXPLAIN ANALYZE, BUFFERS), with the least-amount one that no
   case reaches also as it was before migration 009 (filtering the joined transaction's amount).
3. CPU: the console's process (its supervisor and uvicorn) over --cpu-s seconds, with one
   headless Chromium (Debian's, through Playwright) open on the overview.
4. decision -> browser: a REVIEW decision committed, then the time until the open overview's
   open-cases count shows it, --pushes times.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamguard.bench.private_stack import PrivateStack, private_stack  # noqa: E402
from streamguard.stack.process import Paths, read_pid  # noqa: E402
from streamguard.store import cases, console_users  # noqa: E402
from streamguard.store.db import connect  # noqa: E402

USER, PASSWORD = "bench", "bench console password"
#: Alerts by rule, roughly as the generator's realistic mix raises them.
RULE_MIX = (
    ("HIGH_AMOUNT", 40),
    ("HIGH_VELOCITY", 25),
    ("NIGHT_SPENDING", 15),
    ("HIGH_VELOCITY_AMOUNT", 10),
    ("IMPOSSIBLE_TRAVEL", 6),
    ("CARD_TESTING", 4),
)
#: A least amount above every filled one (at most R$ 3,009.99): the queue's worst case.
NO_AMOUNT = Decimal(1_000_000)
SIZING = {
    "STREAMGUARD_KAFKA_HEAP_MB": "384",
    "STREAMGUARD_FLINK_HEAP_MB": "768",
}


def fill(conn: psycopg.Connection, tx: int, days: int) -> dict[str, float]:
    """Write the ledger by SQL; returns seconds per step."""
    took: dict[str, float] = {}
    span_s = days * 86_400
    steps = {
        "transactions": f"""
            INSERT INTO transactions (transaction_id, account_id, card_token, card_last4, amount,
                channel, merchant_id, merchant_name, merchant_mcc, city, state, lat, lon,
                device_id, ip_address, event_time, kafka_append_at, stored_at, status, is_fraud)
            SELECT 'btx-' || lpad(i::text, 9, '0'), 'ACC' || lpad((i % 200000)::text, 6, '0'),
                'tok_' || (i % 250000), lpad((i % 10000)::text, 4, '0'),
                round((10 + (i::bigint * 7919 % 300000) / 100.0)::numeric, 2),
                (ARRAY['PIX','CREDIT_CARD','DEBIT_CARD','BOLETO','TED'])[1 + i % 5],
                'M' || lpad((i % 5000)::text, 5, '0'), 'Loja ' || (i % 5000), '5411',
                'São Paulo', 'SP', -23.55, -46.63, 'dev-' || (i % 300000), '189.1.2.3',
                ts, ts + interval '20 ms', ts + interval '40 ms', 'APPROVED', false
            FROM generate_series(1, {tx}) AS i,
                 LATERAL (SELECT now() - make_interval(secs => {span_s}.0 * ({tx} - i) / {tx})
                          AS ts) t
        """,
        "fraud_alerts": """
            INSERT INTO fraud_alerts (alert_id, rule_id, severity, score_weight, transaction_id,
                account_id, amount, event_time, evidence, kafka_append_at, stored_at)
            SELECT r.rule || ':' || t.transaction_id, r.rule, 'HIGH', 40, t.transaction_id,
                t.account_id, t.amount, t.event_time, '{"amount": "1.00"}'::jsonb,
                t.event_time + interval '1 s', t.event_time + interval '1.1 s'
            FROM transactions t
            JOIN LATERAL (SELECT %(rules)s::text[] AS rules) m ON true
            JOIN LATERAL (SELECT m.rules[1 + abs(hashtext(t.transaction_id || 'r')) %% 100]
                          AS rule) r ON true
            WHERE abs(hashtext(t.transaction_id)) %% 100 = 0
        """,
        "decisions": """
            INSERT INTO decisions (transaction_id, account_id, action, score, reasons, rule_ids,
                list_hits, version, amount, first_decided_at, decided_at)
            SELECT a.transaction_id, a.account_id, act, sc,
                jsonb_build_array(jsonb_build_object('code', 'rule:' || a.rule_id,
                    'weight', 40, 'text', 'rule ' || a.rule_id)),
                ARRAY[a.rule_id], '{}', 1, a.amount, a.stored_at + interval '30 ms',
                a.stored_at + interval '30 ms'
            FROM fraud_alerts a,
                 LATERAL (SELECT CASE WHEN abs(hashtext(a.alert_id)) %% 10 < 7 THEN 'REVIEW'
                                      WHEN abs(hashtext(a.alert_id)) %% 10 < 9 THEN 'BLOCK'
                                      ELSE 'APPROVE' END AS act) x,
                 LATERAL (SELECT CASE act WHEN 'REVIEW' THEN 45 WHEN 'BLOCK' THEN 80
                                          ELSE 20 END AS sc) y
        """,
        "decision_history": """
            INSERT INTO decision_history (transaction_id, account_id, version, action, score,
                reasons, rule_ids, list_hits, trigger, trigger_append_at, decided_at,
                decided_ms, published_at)
            SELECT transaction_id, account_id, 1, action, score, reasons, rule_ids, list_hits,
                'alert', decided_at - interval '30 ms', decided_at,
                (extract(epoch FROM decided_at) * 1000)::bigint, decided_at
            FROM decisions ORDER BY decided_at
        """,
        "statuses": """
            UPDATE transactions t SET status = CASE d.action WHEN 'BLOCK' THEN 'BLOCKED'
                ELSE d.action END, is_fraud = d.action <> 'APPROVE'
            FROM decisions d WHERE d.transaction_id = t.transaction_id AND d.action <> 'APPROVE'
        """,
        "labels": """
            INSERT INTO transaction_labels (transaction_id, account_id, scenario, is_fraud)
            SELECT transaction_id, account_id, 'bench',
                abs(hashtext(transaction_id || 'label')) %% 3 = 0
            FROM decisions
        """,
        "cases": """
            INSERT INTO cases (transaction_id, account_id, status, claimed_by, claimed_at,
                resolved_at)
            SELECT transaction_id, account_id, 'RESOLVED', 'bench', decided_at + interval '5 min',
                decided_at + interval '10 min'
            FROM decisions WHERE action = 'REVIEW'
              AND abs(hashtext(transaction_id || 'case')) %% 20 = 0
        """,
        "case_resolutions": """
            INSERT INTO case_resolutions (transaction_id, resolution, note, resolved_by,
                resolved_at, decision_version, decision_action)
            SELECT c.transaction_id,
                (ARRAY['CONFIRMED_FRAUD','FALSE_POSITIVE','LEGITIMATE'])[
                    1 + abs(hashtext(c.transaction_id || 'verdict')) %% 3],
                'bench', 'bench', c.resolved_at, 1, 'REVIEW'
            FROM cases c
        """,
    }
    rules = [rule for rule, share in RULE_MIX for _ in range(share)]
    for name, statement in steps.items():
        started = time.monotonic()
        params = {"rules": rules} if "%(rules)s" in statement else None
        with conn.transaction():
            conn.execute(statement if params else statement.replace("%%", "%"), params)
        took[name] = round(time.monotonic() - started, 1)
        print(f"  {name}: {took[name]} s", flush=True)
    started = time.monotonic()
    conn.execute("VACUUM ANALYZE")
    took["vacuum_analyze"] = round(time.monotonic() - started, 1)
    return took


class _Captured:
    """A stand-in connection that keeps the statement it is given and returns no rows."""

    def __init__(self) -> None:
        self.statement: tuple[Any, Any] | None = None

    def execute(self, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
        self.statement = (query, params)
        return []


def queue_plans(conn: psycopg.Connection) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the queue statements that the timed queue pages run."""
    plans = {}
    for name, filters in (
        ("case queue /cases", cases.QueueFilter()),
        ("case queue BLOCK, amount", cases.QueueFilter("BLOCK", min_amount=Decimal(1000))),
        ("case queue, amount none reach", cases.QueueFilter(min_amount=NO_AMOUNT)),
    ):
        captured = _Captured()
        cases.queue(captured, filters)  # type: ignore[arg-type]
        assert captured.statement is not None
        query, params = captured.statement
        explain = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query
        plans[name] = [row[0] for row in conn.execute(explain, params)]
        print(f"  plan of {name}: {plans[name][0]} / {plans[name][-1]}", flush=True)
        if filters.min_amount == NO_AMOUNT:
            # the same statement before migration 009, for comparison on the same fill
            before = sql.SQL(explain.as_string(conn).replace("d.amount >=", "t.amount >="))
            label = f"{name}, by t.amount (before 009)"
            plans[label] = [row[0] for row in conn.execute(before, params)]
            print(f"  plan of {label}: {plans[label][0]} / {plans[label][-1]}", flush=True)
    return plans


def log_in(client: httpx.Client) -> None:
    """A logged-in session on `client`."""
    html = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    answer = client.post(
        "/login", data={"username": USER, "password": PASSWORD, "csrf": csrf[1], "next": "/"}
    )
    assert answer.status_code == 303, answer.text


def targets(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Every page and API call to time, with real ids drawn from the ledger."""
    ids = [
        r[0]
        for r in conn.execute("SELECT transaction_id FROM decisions ORDER BY random() LIMIT 50")
    ]
    accounts = [
        r[0] for r in conn.execute("SELECT account_id FROM decisions ORDER BY random() LIMIT 50")
    ]
    return {
        "overview /": ["/"],
        "search /decisions": ["/decisions"],
        "search by account": [f"/decisions?account_id={a}" for a in accounts],
        "search action=BLOCK": ["/decisions?action=BLOCK"],
        "search rule=CARD_TESTING": ["/decisions?rule_id=CARD_TESTING"],
        "search time range": ["/decisions?since=2020-01-01T00:00&until=2030-01-01T00:00"],
        "decision page": [f"/decisions/{i}" for i in ids],
        "case queue /cases": ["/cases"],
        "case queue BLOCK, amount": ["/cases?action=BLOCK&min_amount=1000"],
        # the worst case of the amount filter: no REVIEW reaches it, so the walk reads them all
        "case queue, amount none reach": [f"/cases?min_amount={NO_AMOUNT}"],
        "API cases, amount none reach": [f"/api/v1/cases?min_amount={NO_AMOUNT}"],
        "pipeline /pipeline": ["/pipeline"],
        "messages browser": ["/pipeline/messages?topic=transactions"],
        "rules /rules": ["/rules"],
        "lists /lists": ["/lists"],
        "API search": ["/api/v1/decisions?limit=50"],
        "API decision": [f"/api/v1/decisions/{i}" for i in ids],
        "API cases": ["/api/v1/cases"],
        "API pipeline": ["/api/v1/pipeline"],
        "API rules": ["/api/v1/rules"],
        "metrics": ["/metrics"],
    }


def time_requests(client: httpx.Client, paths: list[str], count: int) -> dict[str, float]:
    """p50 / p95 / max in ms over `count` requests (cycling through `paths`), plus the first."""
    first_started = time.perf_counter()
    assert client.get(paths[0]).status_code == 200, paths[0]
    first = (time.perf_counter() - first_started) * 1000
    took = []
    for i in range(count):
        started = time.perf_counter()
        answer = client.get(paths[i % len(paths)])
        took.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (paths[i % len(paths)], answer.status_code)
    took.sort()
    return {
        "first_ms": round(first, 1),
        "p50_ms": round(statistics.median(took), 1),
        "p95_ms": round(took[max(0, int(0.95 * len(took)) - 1)], 1),
        "max_ms": round(took[-1], 1),
    }


def console_tree(stack: PrivateStack) -> list[psutil.Process]:
    """The console's supervisor and its children."""
    pid = read_pid(Paths(stack.settings.state_path).pidfile("console"))
    assert pid is not None
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def browser_figures(stack: PrivateStack, cpu_s: float, pushes: int) -> dict[str, object]:
    """CPU of the console with one overview open, and decision -> browser latencies."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, chromium_sandbox=False
        )
        page = browser.new_page(base_url=stack.settings.console_url)
        page.goto("/login?next=/")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#live-state:has-text('live')", timeout=30_000)
        procs = console_tree(stack)
        for proc in procs:
            proc.cpu_percent(None)
        time.sleep(cpu_s)
        cpu = sum(proc.cpu_percent(None) for proc in procs)
        latencies = [push_one(stack, page) for _ in range(pushes)]
        browser.close()
    latencies.sort()
    return {
        "console_cpu_pct_of_one_core": round(cpu, 2),
        "cpu_window_s": cpu_s,
        "decision_to_browser_ms": {
            "p50": round(statistics.median(latencies), 1),
            "max": round(latencies[-1], 1),
            "all": [round(v, 1) for v in latencies],
        },
    }


def push_one(stack: PrivateStack, page: object) -> float:
    """Commit a REVIEW decision; ms until the open overview's open-cases count shows it."""
    before = page.locator("[data-field=open_cases]").inner_text()  # type: ignore[attr-defined]
    tx_id = f"bench-push-{uuid.uuid4().hex[:10]}"
    with connect(stack.settings) as conn:
        conn.execute(
            "INSERT INTO decisions (transaction_id, account_id, action, score, rule_ids,"
            " version) VALUES (%s, 'ACC-push', 'REVIEW', 45, ARRAY['HIGH_AMOUNT'], 1)",
            (tx_id,),
        )
    committed = time.perf_counter()
    page.wait_for_function(  # type: ignore[attr-defined]
        "b => document.querySelector('[data-field=open_cases]').textContent !== b",
        arg=before,
        polling="raf",
        timeout=10_000,
    )
    shown = (time.perf_counter() - committed) * 1000
    time.sleep(0.5)
    return shown


def main() -> None:
    """Fill, measure, print, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tx", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--cpu-s", type=float, default=60.0)
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    result: dict[str, object] = {
        "at": datetime.now(timezone.utc).isoformat(),
        "tx": args.tx,
        "days": args.days,
        "requests": args.requests,
    }
    with private_stack(extra=SIZING, inherit=False, prefix="streamguard-bench-console-") as stack:
        print(f"stack up; filling {args.tx:,} transactions over {args.days} days", flush=True)
        with connect(stack.settings, autocommit=True) as conn:
            result["fill_s"] = fill(conn, args.tx, args.days)
            console_users.set_user(conn, USER, PASSWORD)
            rows = dict(
                conn.execute(
                    "SELECT 'transactions', count(*) FROM transactions UNION ALL"
                    " SELECT 'alerts', count(*) FROM fraud_alerts UNION ALL"
                    " SELECT 'decisions', count(*) FROM decisions UNION ALL"
                    " SELECT 'resolutions', count(*) FROM case_resolutions"
                ).fetchall()
            )
            result["rows"] = rows
            print(f"rows: {rows}", flush=True)
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    "EXPLAIN SELECT date_bin('15 min', event_time, '1970-01-01+00') b, count(*)"
                    " FROM transactions WHERE event_time >= now() - interval '24 hours' GROUP BY b"
                )
            )
            result["chart_plan_uses_brin"] = "transactions_event_time_brin" in plan
            result["queue_plans"] = queue_plans(conn)
            paths = targets(conn)
        timings: dict[str, dict[str, float]] = {}
        with httpx.Client(base_url=stack.settings.console_url, timeout=60) as client:
            log_in(client)
            for name, urls in paths.items():
                timings[name] = time_requests(client, urls, args.requests)
                t = timings[name]
                print(
                    f"  {name:28} p50 {t['p50_ms']:7.1f}  p95 {t['p95_ms']:7.1f}  "
                    f"max {t['max_ms']:7.1f}  first {t['first_ms']:8.1f} ms",
                    flush=True,
                )
        result["timings_ms"] = timings
        result.update(browser_figures(stack, args.cpu_s, args.pushes))
        print(
            f"console CPU with one overview open: {result['console_cpu_pct_of_one_core']}% "
            f"of a core over {args.cpu_s:.0f} s",
            flush=True,
        )
        print(f"decision -> browser: {result['decision_to_browser_ms']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"console-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    worst = max(t["p95_ms"] for t in timings.values())
    print(f"worst p95 {worst} ms (target < 300); written to {out}")


if __name__ == "__main__":
    main()
