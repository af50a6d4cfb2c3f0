"""`streamguard lists` against the real database: add, show, remove, refuse, and audit."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg import sql

from streamguard.decide.lists import ListCache
from tests.stackfixture import StackHandle

pytestmark = pytest.mark.integration


def test_add_show_remove_with_an_audit_trail(infra: StackHandle) -> None:
    device = f"dev-{uuid.uuid4().hex[:8]}"
    added = infra.cli("lists", "add", "block", "device", device, "--reason", "emulator farm")
    assert "added to the block list" in added.stdout
    again = infra.cli("lists", "add", "BLOCK", "DEVICE", device, "--reason", "still bad")
    assert "already on" in again.stdout
    shown = infra.cli("lists", "show", "block")
    assert device in shown.stdout and "still bad" in shown.stdout
    assert device not in infra.cli("lists", "show", "allow").stdout

    removed = infra.cli("lists", "remove", "block", "device", device)
    assert "removed" in removed.stdout
    missing = infra.cli("lists", "remove", "block", "device", device, check=False)
    assert missing.returncode == 1
    assert device not in infra.cli("lists", "show").stdout

    with psycopg.connect(infra.settings.db_url) as conn:
        trail = conn.execute(
            "SELECT change, list_type, entity_type, reason FROM list_changes"
            " WHERE entity_value = %s ORDER BY id",
            (device,),
        ).fetchall()
    assert trail == [
        ("ADD", "BLOCK", "DEVICE", "emulator farm"),
        ("ADD", "BLOCK", "DEVICE", "still bad"),
        ("REMOVE", "BLOCK", "DEVICE", "still bad"),
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("lists", "add", "deny", "account", "A1"),
        ("lists", "add", "block", "card", "A1"),
        ("lists", "add", "block", "account", "x" * 65),
        ("lists", "show", "grey"),
    ],
)
def test_refuses_what_is_not_a_list_entry(infra: StackHandle, args: tuple[str, ...]) -> None:
    result = infra.cli(*args, check=False)
    assert result.returncode == 2
    assert "error:" in result.stdout


def test_a_value_is_data_never_sql(infra: StackHandle) -> None:
    run = uuid.uuid4().hex[:8]
    sentinel = f"sentinel_{run}"
    # a statement that would run if the value were pasted into the SQL, and a quote that ends
    # the literal whichever quote the code used
    value = f"x'); DROP TABLE {sentinel}; --\"{run}"
    with psycopg.connect(infra.settings.db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(sentinel)))
        try:
            infra.cli("lists", "add", "allow", "merchant", value, "--reason", value)
            stored = conn.execute(
                "SELECT entity_value, reason FROM list_entries WHERE entity_value LIKE %s",
                (f"%{run}%",),
            ).fetchall()
            assert stored == [(value, value)]
            assert conn.execute("SELECT to_regclass(%s)", (sentinel,)).fetchone() == (sentinel,)
            infra.cli("lists", "remove", "allow", "merchant", value)
            assert conn.execute("SELECT to_regclass(%s)", (sentinel,)).fetchone() == (sentinel,)
            left = conn.execute(
                "SELECT count(*) FROM list_entries WHERE entity_value LIKE %s", (f"%{run}%",)
            ).fetchone()
            assert left == (0,)
        finally:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(sentinel)))


def test_show_prints_json_with_every_value_whole(infra: StackHandle) -> None:
    device = f"device-with-a-long-fingerprint-{uuid.uuid4().hex}"
    infra.cli("lists", "add", "block", "device", device, "--reason", "rooted phone")
    try:
        rows = json.loads(infra.cli("lists", "show", "block", "--json").stdout)
        row = next(row for row in rows if row["value"] == device)
        assert row["list"] == "BLOCK" and row["entity"] == "DEVICE"
        assert row["reason"] == "rooted phone" and row["added_at"]
        assert device in infra.cli("lists", "show", "block").stdout  # a pipe: not cut at 80
    finally:
        infra.cli("lists", "remove", "block", "device", device)


class StepClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_list_change_applies_within_the_refresh_interval(infra: StackHandle) -> None:
    """The decision service's cache reloads a change once `refresh_s` has passed, on a clock the
    test moves: "within seconds" is checked without racing a loaded machine's wall clock."""
    merchant = f"M-CLOCK-{uuid.uuid4().hex[:8]}"
    clock = StepClock()
    cache = ListCache(refresh_s=2.0, clock=clock)
    with psycopg.connect(infra.settings.db_url) as conn:
        assert cache.refresh(conn)  # the first load
        infra.cli("lists", "add", "block", "merchant", merchant)
        clock.now_s += 1.9
        assert not cache.refresh(conn), "reloaded before refresh_s"
        assert cache.hits("ACC-X", merchant) == ()
        clock.now_s += 0.1
        assert cache.refresh(conn), "not reloaded once refresh_s had passed"
        assert [hit.value for hit in cache.hits("ACC-X", merchant)] == [merchant]
        clock.now_s += 2.0
        assert not cache.refresh(conn), "reloaded with no change"
        infra.cli("lists", "remove", "block", "merchant", merchant)
        clock.now_s += 2.0
        assert cache.refresh(conn)
        assert cache.hits("ACC-X", merchant) == ()
