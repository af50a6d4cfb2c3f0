"""`streamguard rules list | validate | deploy | replay`: the declarative rule catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamguard.cli.output import JsonOption, emit
from streamguard.config import get_settings
from streamguard.rules.catalog import Rule, RuleError, load_rules

app = typer.Typer(help="List, validate and deploy the Flink SQL rules.", no_args_is_help=True)
console = Console()

FolderOption = typer.Option(None, "--dir", help="a folder of rule files (default: the packaged)")


def _load(folder: Path | None) -> list[Rule]:
    try:
        return load_rules(folder)
    except RuleError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command("list")
def list_rules(folder: Path | None = FolderOption, as_json: bool = JsonOption) -> None:
    """Every rule with its id, severity, weight, parameters and description."""
    overrides = get_settings().rule_params
    rows = [
        {
            "id": rule.rule_id,
            "severity": rule.severity,
            "weight": rule.score_weight,
            "params": {k: overrides.get(f"{rule.rule_id}.{k}", v) for k, v in rule.params.items()},
            "description": rule.description,
            "file": rule.path.name,
        }
        for rule in _load(folder)
    ]
    columns = [(key, key) for key in ("id", "severity", "weight", "params", "description", "file")]
    emit(
        console,
        rows,
        columns,
        title="Rules",
        as_json=as_json,
        shown={"params": lambda params: ", ".join(f"{k}={v}" for k, v in params.items())},
    )


@app.command()
def validate(folder: Path | None = FolderOption) -> None:
    """Compile every rule on the Flink engine (EXPLAIN), without running anything."""
    from streamguard.rules.validate import validate as compile_rules

    settings = get_settings()
    rules = _load(folder)
    unknown = _unknown_overrides(rules, settings.rule_params)
    verdicts = compile_rules(settings, rules)
    for verdict in verdicts:
        if verdict.error is None:
            console.print(f"[green]ok[/green]    {verdict.rule.rule_id} ({verdict.rule.path.name})")
        else:
            console.print(f"[red]error[/red] {verdict.rule.rule_id} ({verdict.rule.path.name})")
            console.print(verdict.error, markup=False, highlight=False)
    if unknown:
        console.print(f"[red]error[/red] unknown rule parameter(s): {', '.join(unknown)}")
    failed = sum(verdict.error is not None for verdict in verdicts) + bool(unknown)
    if failed:
        raise typer.Exit(1)
    console.print(f"{len(verdicts)} rules compile.")


def _unknown_overrides(rules: list[Rule], overrides: dict[str, str]) -> list[str]:
    known = {f"{rule.rule_id}.{name}" for rule in rules for name in rule.params}
    return sorted(set(overrides) - known)


@app.command()
def deploy(
    remote: str = typer.Option(
        "", "--remote", help="HOST:PORT of a Flink cluster's REST endpoint (default: embedded)"
    ),
    folder: Path | None = FolderOption,
) -> None:
    """Submit every rule as one job: to a remote cluster (detached), or run it embedded here."""
    settings = get_settings()
    remote = remote or settings.flink_remote
    rules = _load(folder)
    if not remote:
        from streamguard.rules import runner

        console.print("No --remote: running the rules job here, in an embedded cluster.")
        runner.main(rules)
        return
    from streamguard.rules.engine import build_rules_job

    try:
        result = build_rules_job(settings, remote=remote, rules=rules).execute()
    except RuleError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client else "?"
    console.print(f"submitted {len(rules)} rules as job {job_id} to http://{remote}")
    print(json.dumps({"job_id": job_id, "remote": remote, "rules": [r.rule_id for r in rules]}))


@app.command()
def replay(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines, one tx each")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the alerts here as JSON lines")
    ] = None,
    folder: Path | None = FolderOption,
) -> None:
    """Run the rules over a file of transactions and print the alerts (a what-if replay)."""
    from streamguard.rules.replay import replay as run_replay

    alerts = run_replay(get_settings(), path, rules=_load(folder))
    lines = [alert.model_dump_json() for alert in alerts]
    if output is not None:
        output.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    else:
        for line in lines:
            print(line)
    Console(stderr=True).print(f"{len(alerts)} alerts", style="bold")
