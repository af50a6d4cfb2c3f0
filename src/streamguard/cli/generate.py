"""`streamguard generate`: synthetic Brazilian transactions into Kafka."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the generate command to the main app."""

    @app.command("generate")
    def generate(rate: int = typer.Option(20, help="transactions per second")) -> None:
        """Stream synthetic transactions to Kafka until stopped."""
        from streamguard.config import get_settings
        from streamguard.generate.simple import stream

        stream(get_settings(), rate=rate)
