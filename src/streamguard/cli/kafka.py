"""`streamguard kafka topics | tail`: the original's Kafka commands."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.text import Text

from streamguard.cli.output import JsonOption, emit
from streamguard.config import get_settings

app = typer.Typer(help="Look at the Kafka topics.", no_args_is_help=True)
console = Console()


@app.command()
def topics(as_json: bool = JsonOption) -> None:
    """List the topics with their partition counts."""
    from confluent_kafka.admin import AdminClient

    servers = get_settings().bootstrap_servers
    metadata = AdminClient({"bootstrap.servers": servers}).list_topics(timeout=10)
    rows = [
        {"topic": name, "partitions": len(metadata.topics[name].partitions)}
        for name in sorted(metadata.topics)
        if not name.startswith("__")
    ]
    columns = [("topic", "topic"), ("partitions", "partitions")]
    emit(console, rows, columns, title=f"Topics on {servers}", as_json=as_json)


@app.command()
def tail(
    topic: str = typer.Argument(..., help="topic to follow, e.g. transactions or fraud_alerts"),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="start at the oldest"),
    limit: int = typer.Option(0, "--limit", "-n", help="stop after this many messages (0: never)"),
) -> None:
    """Print a topic's messages as they arrive (key, value and headers)."""
    import uuid

    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": get_settings().bootstrap_servers,
            "group.id": f"streamguard-tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        while limit == 0 or seen < limit:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            seen += 1
            key = (message.key() or b"").decode(errors="replace")
            value = (message.value() or b"").decode(errors="replace")
            headers = {
                str(pair[0]): pair[1].decode(errors="replace")
                if isinstance(pair[1], bytes)
                else str(pair[1])
                for pair in (message.headers() or [])
            }
            # Styles as spans, never as markup: a key or value may hold "[...]", and with
            # markup off the tags themselves were printed.
            line = Text.assemble(
                (f"{message.partition()}:{message.offset()}", "cyan"),
                " ",
                (key, "bold"),
                f" {value}" + (f" {headers}" if headers else ""),
            )
            console.print(line, soft_wrap=True, highlight=False)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
