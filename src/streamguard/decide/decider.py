"""The decision step of a batch: which transactions have new evidence, and what to decide for them.

It runs inside the batch's database transaction, after the batch's transactions and alerts are
stored, so it reads the whole evidence for each transaction from PostgreSQL whatever the order
in which the transaction and its alerts arrived, and a replayed batch decides the same way.
A velocity alert also escalates the burst's earlier transactions (`domain/bursts.py`), in the
same statements as the batch's own decisions.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import psycopg

from streamguard.decide.lists import ListCache
from streamguard.domain import bursts
from streamguard.domain.models import from_epoch_ms
from streamguard.domain.policy import Thresholds, Verdict, revise
from streamguard.domain.scoring import AccountHistory, Evidence, MerchantRisk, assess
from streamguard.store import decisions as repo
from streamguard.store.ledger import LedgerRow


@dataclass(frozen=True)
class Trigger:
    """Why a transaction is (re)decided now, and when Kafka stored the message that said so."""

    kind: str  # 'transaction' or 'alert'
    append_at: datetime | None


def triggers(
    rows: Sequence[LedgerRow],
    alerts_appended: dict[str, int | None],
    *,
    cache: ListCache,
    new_alert_tx_ids: Iterable[str],
    decided_before: Iterable[str],
) -> dict[str, Trigger]:
    """The batch's transactions with new evidence: a list hit, a waiting decision, a new alert.

    `decided_before` are transactions decided from their alerts alone that are now stored, in
    this batch or an earlier one."""
    found: dict[str, Trigger] = {}
    waiting = set(decided_before)
    arrived = [row for row in rows if row.transaction_id in waiting] if waiting else []
    # Arrived in an earlier batch, possibly another instance's (ledger.take_arrived).
    for tx_id in waiting.difference(row.transaction_id for row in arrived):
        found[tx_id] = Trigger("transaction", None)
    for row in (*cache.listed(rows), *arrived):
        found[row.transaction_id] = Trigger("transaction", _at(row.append_ms))
    for tx_id in new_alert_tx_ids:
        found[tx_id] = Trigger("alert", _at(alerts_appended.get(tx_id)))
    return found


def _at(ms: int | None) -> datetime | None:
    return from_epoch_ms(ms) if ms else None


def decide(
    conn: psycopg.Connection,
    due: dict[str, Trigger],
    *,
    cache: ListCache,
    thresholds: Thresholds,
    now_ms: int | None = None,
) -> list[repo.HistoryRow]:
    """Re-decide every due transaction; record new versions and statuses; return the versions.

    `now_ms` stamps the new versions (the wall clock when not given; a backtest passes its own).
    """
    if not due:
        return []
    ids = sorted(due)
    stored = repo.load_transactions(conn, ids)
    alerts = repo.load_alerts(conn, ids)
    previous = repo.load_verdicts(conn, ids)
    evidence = [
        evidence_of(tx_id, stored.get(tx_id), alerts.get(tx_id, []), cache) for tx_id in ids
    ]
    known = [e for e in evidence if e is not None]
    histories = repo.load_histories(conn, [(e.transaction_id, e.account_id, at) for e, at in known])
    merchants = repo.load_merchants(
        conn, (e.tx.merchant_id for e, _ in known if e.tx and e.tx.merchant_id)
    )
    versions: list[repo.NewVersion] = []
    statuses: dict[str, str] = {}
    awaiting: list[str] = []
    current: dict[str, Verdict] = {}
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    for item, _ in known:
        item = with_context(item, histories, merchants)
        verdict = revise(previous.get(item.transaction_id), assess(item), thresholds)
        now: Verdict | None = verdict or previous.get(item.transaction_id)
        if verdict is not None:
            trigger = due[item.transaction_id]
            versions.append(
                repo.NewVersion(
                    item.transaction_id,
                    item.account_id,
                    verdict,
                    trigger.kind,
                    trigger.append_at,
                    now_ms,
                    item.amount,
                )
            )
        if now is not None:
            current[item.transaction_id] = now
            if item.transaction_id in stored:
                statuses[item.transaction_id] = now.status
            else:
                awaiting.append(item.transaction_id)
    windows = bursts.judged(windows_of(alerts), current)
    if windows:
        escalate_windows(conn, windows, due, current, versions, statuses, now_ms)
    rows = repo.save_versions(conn, versions)
    repo.apply_statuses(conn, statuses)
    repo.await_transactions(conn, awaiting)
    return rows


def windows_of(alerts: dict[str, list[repo.StoredAlert]]) -> list[bursts.BurstWindow]:
    """The windows that the due transactions' alerts name (velocity bursts)."""
    found = (
        bursts.window_of(a.alert_id, a.transaction_id, a.account_id, a.event_time, a.fact)
        for items in alerts.values()
        for a in items
    )
    return [w for w in found if w is not None]


def escalate_windows(
    conn: psycopg.Connection,
    windows: list[bursts.BurstWindow],
    due: dict[str, Trigger],
    current: dict[str, Verdict],
    versions: list[repo.NewVersion],
    statuses: dict[str, str],
    now_ms: int,
) -> None:
    """Add the versions and statuses that escalate the windows' other transactions to REVIEW.

    A member decided in this batch already gets its new version escalated instead (one version
    per transaction and batch); the others get one more, triggered by the window's alert."""
    members = repo.load_window_members(conn, [(w.account_id, w.start, w.end) for w in windows])
    undecided = [m.transaction_id for m in members if m.transaction_id not in current]
    known = {**repo.load_verdicts(conn, undecided), **current}
    found = bursts.escalations(
        windows, ((m.transaction_id, m.account_id, m.event_time) for m in members), known
    )
    in_batch = {v.transaction_id: i for i, v in enumerate(versions)}
    for member in members:
        if (escalated := found.get(member.transaction_id)) is None:
            continue
        verdict, window = escalated
        statuses[member.transaction_id] = verdict.status
        if (index := in_batch.get(member.transaction_id)) is not None:
            mine = versions[index]
            versions[index] = replace(mine, verdict=replace(verdict, version=mine.verdict.version))
            continue
        versions.append(
            repo.NewVersion(
                member.transaction_id,
                member.account_id,
                verdict,
                "escalation",
                due[window.transaction_id].append_at,
                now_ms,
                member.amount,
            )
        )


def evidence_of(
    tx_id: str,
    stored: repo.StoredTransaction | None,
    alerts: Sequence[repo.StoredAlert],
    cache: ListCache,
) -> tuple[Evidence, datetime] | None:
    """What is known of one transaction; None when neither it nor an alert is stored."""
    facts = tuple(a.fact for a in alerts)
    if stored is not None:
        hits = cache.hits(stored.account_id, stored.facts.merchant_id, stored.facts.device_id)
        return (
            Evidence(tx_id, stored.account_id, stored.amount, facts, hits, stored.facts),
            stored.event_time,
        )
    if alerts:
        first = alerts[0]
        return (
            Evidence(tx_id, first.account_id, first.amount, facts, cache.hits(first.account_id)),
            first.event_time,
        )
    return None


def with_context(
    item: Evidence,
    histories: dict[str, AccountHistory],
    merchants: dict[str, MerchantRisk],
) -> Evidence:
    """The evidence with the account's history and the merchant's counters, where known."""
    history = histories.get(item.transaction_id, item.history)
    merchant = merchants.get(item.tx.merchant_id) if item.tx and item.tx.merchant_id else None
    return replace(item, history=history, merchant=merchant)
