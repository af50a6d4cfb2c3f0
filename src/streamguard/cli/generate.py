"""`streamguard generate batch | stream | realistic | attack | blocklist | scenarios`.

With no sub-command it opens the interactive menu on a terminal, and prints this help
otherwise (so a script or CI never hangs on a prompt).
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from streamguard.generate.defaults import (
    DEFAULT_ACCOUNTS,
    DEFAULT_FRAUD_RATE,
    DEFAULT_POPULATION_SEED,
    FRAUD_SCENARIOS,
    LOCAL_TIME_ZONE,
)

app = typer.Typer(
    help="Synthetic Brazilian transactions with labelled fraud, into Kafka.",
    invoke_without_command=True,
)

Accounts = Annotated[int, typer.Option("--accounts", help="accounts in the population", min=1)]
FraudRate = Annotated[
    float,
    typer.Option("--fraud-rate", help="share of transactions that are fraud", min=0, max=0.99),
]
Mix = Annotated[
    str,
    typer.Option(
        "--mix",
        help="share of fraud per scenario, e.g. velocity_burst=2,card_testing=1 "
        "(unnamed scenarios: 0; default: equal)",
    ),
]
Seed = Annotated[
    int | None, typer.Option("--seed", help="same seed, same transactions (default: random)")
]
PopulationSeed = Annotated[
    int, typer.Option("--population-seed", help="which population (accounts, merchants)")
]
Output = Annotated[
    str, typer.Option("--output", help="kafka, stdout (transactions as JSON lines) or none")
]
DeliveryTimeout = Annotated[
    float | None,
    typer.Option("--delivery-timeout-s", help="give up on a message after this (default 120 s)"),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="only the final counts")]


def _options(
    accounts: int,
    fraud_rate: float,
    mix: str,
    seed: int | None,
    population_seed: int,
    output: str,
    delivery_timeout_s: float | None,
    quiet: bool,
    short_card_tests: bool = False,
):  # type: ignore[no-untyped-def]
    from streamguard.generate.engine import EQUAL_MIX, GeneratorConfig, parse_mix
    from streamguard.generate.run import OUTPUTS, RunOptions

    if output not in OUTPUTS:
        raise typer.BadParameter(f"choose from {', '.join(OUTPUTS)}", param_hint="--output")
    try:
        config = GeneratorConfig(
            accounts=accounts,
            fraud_rate=fraud_rate,
            mix=parse_mix(mix) if mix else EQUAL_MIX,
            population_seed=population_seed,
            short_card_tests=short_card_tests,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return RunOptions(config, seed, output, delivery_timeout_s, quiet)


def _local_time(text: str | None) -> datetime | None:
    """An ISO date-time; without a zone it is São Paulo time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO date-time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(LOCAL_TIME_ZONE))


@app.callback()
def generate(
    ctx: typer.Context,
    rate: Annotated[int | None, typer.Option("--rate", hidden=True)] = None,
) -> None:
    """Synthetic Brazilian transactions with labelled fraud. Run without a command for a menu."""
    if ctx.invoked_subcommand is not None:
        return
    if rate is not None:  # the skeleton's `generate --rate N`: the stream mode
        code = _run_stream(
            rate,
            None,
            _options(
                DEFAULT_ACCOUNTS,
                DEFAULT_FRAUD_RATE,
                "",
                None,
                DEFAULT_POPULATION_SEED,
                "kafka",
                None,
                False,
            ),
        )
        raise typer.Exit(code)
    if sys.stdin.isatty() and sys.stdout.isatty():
        from streamguard.generate.menu import run_menu

        raise typer.Exit(run_menu())
    typer.echo(ctx.get_help())
    raise typer.Exit(0)


@app.command()
def batch(
    count: Annotated[
        int, typer.Option("--count", "-n", help="transactions to generate", min=1)
    ] = 100_000,
    start: Annotated[
        str | None,
        typer.Option("--start", help="simulated start (ISO; default: so the run ends about now)"),
    ] = None,
    tx_per_account_day: Annotated[
        float, typer.Option("--tx-per-account-day", help="simulated pace per account", min=0.01)
    ] = 10.0,
    accounts: Accounts = DEFAULT_ACCOUNTS,
    fraud_rate: FraudRate = DEFAULT_FRAUD_RATE,
    mix: Mix = "",
    seed: Seed = None,
    population_seed: PopulationSeed = DEFAULT_POPULATION_SEED,
    output: Output = "kafka",
    delivery_timeout_s: DeliveryTimeout = None,
    quiet: Quiet = False,
) -> None:
    """N transactions as fast as possible, over simulated time (each account's events in order)."""
    from streamguard.generate import run

    options = _options(
        accounts, fraud_rate, mix, seed, population_seed, output, delivery_timeout_s, quiet
    )
    raise typer.Exit(
        run.batch(
            options, count=count, start=_local_time(start), tx_per_account_day=tx_per_account_day
        )
    )


def _run_stream(rate: float, duration_s: float | None, options, follow_cycle: bool = False) -> int:  # type: ignore[no-untyped-def]
    from streamguard.generate import run

    return run.paced(options, rate=rate, follow_cycle=follow_cycle, duration_s=duration_s)


Duration = Annotated[
    float | None, typer.Option("--duration-s", help="stop after this many seconds (default: never)")
]


@app.command()
def stream(
    rate: Annotated[
        float, typer.Option("--rate", "-r", help="transactions per second", min=0.01)
    ] = 20,
    duration_s: Duration = None,
    accounts: Accounts = DEFAULT_ACCOUNTS,
    fraud_rate: FraudRate = DEFAULT_FRAUD_RATE,
    mix: Mix = "",
    seed: Seed = None,
    population_seed: PopulationSeed = DEFAULT_POPULATION_SEED,
    output: Output = "kafka",
    delivery_timeout_s: DeliveryTimeout = None,
    quiet: Quiet = False,
    short_card_tests: Annotated[
        bool,
        typer.Option(
            "--short-card-tests",
            help="card tests of 3 charges and the cash-out within 63-69 s, so that one fits "
            "a benchmark step (streamguard bench uses it)",
        ),
    ] = False,
) -> None:
    """A steady R tx/s stamped with the current time, until Ctrl+C (or --duration-s)."""
    options = _options(
        accounts,
        fraud_rate,
        mix,
        seed,
        population_seed,
        output,
        delivery_timeout_s,
        quiet,
        short_card_tests,
    )
    raise typer.Exit(_run_stream(rate, duration_s, options))


@app.command()
def realistic(
    rate: Annotated[
        float, typer.Option("--rate", "-r", help="the daily mean in tx/s", min=0.01)
    ] = 20,
    duration_s: Duration = None,
    accounts: Accounts = DEFAULT_ACCOUNTS,
    fraud_rate: FraudRate = DEFAULT_FRAUD_RATE,
    mix: Mix = "",
    seed: Seed = None,
    population_seed: PopulationSeed = DEFAULT_POPULATION_SEED,
    output: Output = "kafka",
    delivery_timeout_s: DeliveryTimeout = None,
    quiet: Quiet = False,
) -> None:
    """Volume following the daily cycle in São Paulo: quiet at 4 a.m., busy at noon and 7 p.m."""
    options = _options(
        accounts, fraud_rate, mix, seed, population_seed, output, delivery_timeout_s, quiet
    )
    raise typer.Exit(_run_stream(rate, duration_s, options, follow_cycle=True))


@app.command()
def attack(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help=f"one of: {', '.join(FRAUD_SCENARIOS)}")
    ],
    account: Annotated[
        str | None, typer.Option("--account", "-a", help="the victim, e.g. ACC000123 (or a MULE)")
    ] = None,
    episodes: Annotated[int, typer.Option("--episodes", help="how many attacks", min=1)] = 1,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="send at once (timestamps keep the attack's pace)")
    ] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="when the attack starts (ISO; default: now)")
    ] = None,
    accounts: Accounts = DEFAULT_ACCOUNTS,
    seed: Seed = None,
    population_seed: PopulationSeed = DEFAULT_POPULATION_SEED,
    output: Output = "kafka",
    delivery_timeout_s: DeliveryTimeout = None,
) -> None:
    """One fraud scenario on demand, e.g. --scenario velocity_burst --account ACC000123."""
    from streamguard.generate import run

    if scenario not in FRAUD_SCENARIOS:
        raise typer.BadParameter(
            f"choose from {', '.join(FRAUD_SCENARIOS)}", param_hint="--scenario"
        )
    options = _options(accounts, 0.0, "", seed, population_seed, output, delivery_timeout_s, False)
    try:
        code = run.attack(
            options,
            scenario=scenario,
            account=account,
            episodes=episodes,
            wait=not no_wait,
            at=_local_time(at),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--account") from exc
    raise typer.Exit(code)


@app.command()
def blocklist() -> None:
    """The blocklist scenario's ids, one 'ENTITY_TYPE value' per line (for the decision lists)."""
    from streamguard.generate.blocklist import blocked_ids

    for entity_type, values in blocked_ids().items():
        for value in values:
            typer.echo(f"{entity_type} {value}")


@app.command()
def scenarios() -> None:
    """The fraud scenarios and what each one does."""
    from streamguard.generate.scenarios import describe

    for name in FRAUD_SCENARIOS:
        typer.echo(f"{name:<18} {describe(name)}")


def register(main: typer.Typer) -> None:
    """Add `streamguard generate …` to the main app."""
    main.add_typer(app, name="generate")
