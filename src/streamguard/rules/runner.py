"""The rules process: submit every rule as one Flink job and keep the mini-cluster alive."""

from __future__ import annotations

import logging
import signal
import sys

from streamguard.config import get_settings
from streamguard.rules.engine import build_rules_job

log = logging.getLogger(__name__)


def main() -> None:
    """Run the rules job until SIGTERM; the embedded cluster dies with this process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    statements = build_rules_job(settings)
    result = statements.execute()
    client = result.get_job_client()
    log.info(
        "rules job %s submitted; Flink UI on http://localhost:%d",
        client.get_job_id() if client else "?",
        settings.flink_ui_port,
    )
    result.wait()


if __name__ == "__main__":
    main()
