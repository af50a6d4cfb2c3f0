"""The interactive menu of `streamguard generate` (on a terminal, with no sub-command)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.prompt import FloatPrompt, IntPrompt, Prompt

from streamguard.generate.blocklist import blocked_ids
from streamguard.generate.run import RunOptions
from streamguard.generate.scenarios import FRAUD_SCENARIOS, describe

CHOICES = {
    "1": ("batch", "N transactions as fast as possible, with a progress bar"),
    "2": ("stream", "a steady R tx/s until Ctrl+C"),
    "3": ("attack", "one fraud scenario on demand (e.g. a velocity burst on one account)"),
    "4": ("realistic", "volume following the daily cycle in São Paulo"),
    "5": ("blocklist", "print the blocklist scenario's accounts and merchants"),
    "q": ("quit", ""),
}


def run_menu(console: Console | None = None, runner: Callable[..., int] | None = None) -> int:
    """Ask for a mode and its numbers, run it, return its exit code."""
    from streamguard.generate import run

    console = console or Console()
    console.print("[bold]StreamGuard transaction generator[/bold]")
    for key, (name, text) in CHOICES.items():
        console.print(f"  [cyan]{key}[/cyan]) {name:<10} {text}")
    choice = Prompt.ask("Choose", choices=list(CHOICES), default="2", console=console)
    mode = CHOICES[choice][0]
    if mode == "quit":
        return 0
    if mode == "blocklist":
        for entity_type, values in blocked_ids().items():
            for value in values:
                console.print(f"{entity_type} {value}")
        return 0
    seed_text = Prompt.ask("Seed (empty: random)", default="", console=console)
    options = RunOptions(seed=int(seed_text) if seed_text.strip() else None)
    if mode == "batch":
        count = IntPrompt.ask("How many transactions", default=100_000, console=console)
        return (runner or run.batch)(options, count=count)
    if mode in ("stream", "realistic"):
        rate = FloatPrompt.ask("Transactions per second", default=20.0, console=console)
        return (runner or run.paced)(
            options, rate=rate, follow_cycle=mode == "realistic", duration_s=None
        )
    for name in FRAUD_SCENARIOS:
        console.print(f"  [cyan]{name}[/cyan]: {describe(name)}")
    scenario = Prompt.ask("Scenario", choices=list(FRAUD_SCENARIOS), console=console)
    account = Prompt.ask("Account (empty: any)", default="", console=console).strip() or None
    return (runner or run.attack)(
        options, scenario=scenario, account=account, episodes=1, wait=True, at=None
    )
