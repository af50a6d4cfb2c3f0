"""`streamguard bench`: the end-to-end benchmark on a private stack, with this machine's limits."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_RATES = [5000, 20000]
DEFAULT_OUT = Path("benchmarks/results")


def register(app: typer.Typer) -> None:
    """Add the bench command to the main app."""

    @app.command("bench")
    def bench(
        rate: Annotated[
            list[int], typer.Option("--rate", "-r", help="tx/s per step, repeatable; 0 = flat out")
        ] = DEFAULT_RATES,
        duration: Annotated[
            float, typer.Option("--duration", "-d", help="measured seconds per step")
        ] = 60.0,
        warmup: Annotated[float, typer.Option(help="unmeasured seconds before each step")] = 15.0,
        limits: Annotated[
            bool, typer.Option("--limits/--no-limits", help="measure the raw limits too")
        ] = True,
        limit_records: Annotated[int, typer.Option(help="records for the Kafka perf tools")] = (
            1_000_000
        ),
        copy_rows: Annotated[int, typer.Option(help="rows for the PostgreSQL COPY limit")] = (
            300_000
        ),
        seed: Annotated[int, typer.Option(help="generator seed")] = 42,
        accounts: Annotated[
            int, typer.Option(help="generator population (0: about 32 per tx/s, at least 10,000)")
        ] = 0,
        out: Annotated[Path, typer.Option(help="output folder")] = DEFAULT_OUT,
        keep_state: Annotated[
            bool, typer.Option(help="keep the private stack's folder and logs")
        ] = False,
        progress: Annotated[
            bool, typer.Option("--progress/--no-progress", help="live display")
        ] = True,
    ) -> None:
        """Run the generator through the real pipeline on a private stack and report throughput,
        latency per stage, CPU/RSS per component, detection quality and the machine's limits."""
        from streamguard.bench.display import Progress
        from streamguard.bench.plot import plot
        from streamguard.bench.run import BenchPlan, run
        from streamguard.bench.summary import summary_table

        plan = BenchPlan(
            rates=tuple(rate),
            duration_s=duration,
            warmup_s=warmup,
            limits=limits,
            limit_records=limit_records,
            copy_rows=copy_rows,
            seed=seed,
            accounts=accounts or None,
            out_dir=out,
            keep_state=keep_state,
        )
        with Progress(enabled=progress) as display:
            report = run(plan, display)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / f"bench-{stamp}.json"
        json_path.write_text(json.dumps(report, indent=2))
        png_path = plot(report, out / f"bench-{stamp}.png")
        display.console.print(summary_table(report))
        display.console.print(f"results: {json_path}\nplot:    {png_path}")
