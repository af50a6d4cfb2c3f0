"""`streamguard backtest`: what a rule change would have done to past traffic."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from streamguard.backtest import request
from streamguard.cli.output import emit
from streamguard.config import get_settings
from streamguard.rules.catalog import RuleError

console = Console()


def register(app: typer.Typer) -> None:
    """Add the `backtest` command to the CLI."""
    app.command("backtest")(backtest)


def parse_moment(text: str) -> datetime:
    """An ISO-8601 moment; without an offset it is UTC."""
    try:
        return request.parse_moment(text)
    except request.RequestError as exc:
        raise typer.BadParameter(str(exc)) from exc


def parse_sets(sets: list[str]) -> dict[str, str]:
    """`RULE.param=value` pairs as overrides (the value is checked by the catalog)."""
    try:
        return request.parse_sets(sets)
    except request.RequestError as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from exc


def backtest(
    start: Annotated[str, typer.Option("--from", help="start of the period (ISO-8601)")],
    end: Annotated[str, typer.Option("--to", help="end of the period, excluded (ISO-8601)")],
    rules_dir: Annotated[
        Path | None, typer.Option("--rules", help="the candidate's folder of rule files")
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="a candidate override, RULE.param=value")
    ] = None,
    warmup_min: Annotated[
        int, typer.Option("--warmup-min", min=0, help="history read before --from for windows")
    ] = 60,
    history_from: Annotated[
        str,
        typer.Option(
            "--history",
            help="read the transactions from the topic, the ledger, or auto: the topic while"
            " its retention still holds the period, else the ledger",
        ),
    ] = "auto",
    out: Annotated[Path | None, typer.Option("--out", help="write the result as JSON here")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="write a self-contained HTML report here")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON result")] = False,
) -> None:
    """Run the live catalog and a candidate over the same history, decide, and compare."""
    from streamguard.backtest import history
    from streamguard.backtest.run import BacktestError, Period, catalogs
    from streamguard.backtest.run import backtest as run_backtest

    if history_from not in history.CHOICES:
        raise typer.BadParameter(
            f"{history_from!r} is not one of {', '.join(history.CHOICES)}", param_hint="--history"
        )
    settings = get_settings()
    try:
        period = Period(parse_moment(start), parse_moment(end))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if rules_dir is None and not sets:
        raise typer.BadParameter("give a candidate: --rules DIR and/or --set RULE.param=value")
    try:
        live, candidate = catalogs(settings, rules_dir, parse_sets(sets or []))
    except RuleError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    try:
        result = run_backtest(
            settings,
            period,
            live,
            candidate,
            warmup=timedelta(minutes=warmup_min),
            history_from=history_from,
        )
    except BacktestError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    if out is not None:
        out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    if html is not None:
        from streamguard.backtest.report import render

        html.write_text(render(result), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    show(result)


def show(result: dict[str, Any]) -> None:
    """The result as terminal tables: per rule, per action, and the changed verdicts."""
    live, candidate = result["catalogs"]["live"], result["catalogs"]["candidate"]
    period = result["period"]
    console.print(
        f"{result['transactions']:,} transactions from {period['from']} to {period['to']}, "
        f"{result['known_fraud']:,} known fraud; replayed from the {result['history']} in "
        f"{result['seconds']['replay']} s "
        f"({result['replay_tx_per_s'] or 0:,} tx/s)",
        highlight=False,
    )
    rules = sorted(set(live["alerts_per_rule"]) | set(candidate["alerts_per_rule"]))
    rows = []
    for rule in [*rules, "ALL (cases)"]:
        row: dict[str, Any] = {"rule": rule}
        for name, summary in (("live", live), ("cand", candidate)):
            quality = (
                summary["quality"]["overall"]
                if rule == "ALL (cases)"
                else summary["quality"]["per_rule"].get(rule, {})
            )
            count = (
                sum(summary["actions"][a] for a in ("REVIEW", "BLOCK"))
                if rule == "ALL (cases)"
                else summary["alerts_per_rule"].get(rule, 0)
            )
            row[f"{name}_n"] = count
            for key in ("precision", "recall", "f1"):
                row[f"{name}_{key}"] = quality.get(key)
        rows.append(row)
    columns = [("rule", "rule")]
    for name in ("live", "cand"):
        columns += [(f"{name}_n", f"{name} alerts"), (f"{name}_precision", "precision")]
        columns += [(f"{name}_recall", "recall"), (f"{name}_f1", "F1")]
    ratio = {key: _ratio for key, _ in columns if key.endswith(("precision", "recall", "f1"))}
    emit(console, rows, columns, title="Alerts and quality", as_json=False, shown=ratio)
    actions = [
        {"action": a, "live": live["actions"][a], "candidate": candidate["actions"][a]}
        for a in ("APPROVE", "REVIEW", "BLOCK")
    ]
    emit(
        console,
        actions,
        [("action", "action"), ("live", "live"), ("candidate", "candidate")],
        title="Decisions",
        as_json=False,
    )
    days = sorted(set(live["cases_per_day"]) | set(candidate["cases_per_day"]))
    load = [
        {
            "day": d,
            "live": live["cases_per_day"].get(d, 0),
            "cand": candidate["cases_per_day"].get(d, 0),
        }
        for d in days
    ]
    emit(
        console,
        load,
        [("day", "day"), ("live", "live cases"), ("cand", "candidate cases")],
        title="Review load",
        as_json=False,
    )
    changes = result["changes"]
    emit(
        console,
        changes[:50],
        [
            ("transaction_id", "transaction"),
            ("event_time", "event time"),
            ("live_action", "live"),
            ("candidate_action", "candidate"),
            ("added_rules", "rules added"),
            ("removed_rules", "rules removed"),
        ],
        title=f"Changed verdicts ({len(changes):,}; the first 50, all in --out/--json)",
        as_json=False,
        shown={"added_rules": ", ".join, "removed_rules": ", ".join},
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
