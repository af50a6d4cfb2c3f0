"""`python -m streamguard.console`: the console's web server (uvicorn) for the configured stack."""

from __future__ import annotations

import logging

import uvicorn

from streamguard.config import get_settings
from streamguard.console.app import create_app


def main() -> None:
    """Serve the console on STREAMGUARD_CONSOLE_HOST:STREAMGUARD_CONSOLE_PORT until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    app = create_app(settings)
    logging.getLogger("streamguard.console").info(
        "console listening on %s (bound to %s)", settings.console_url, settings.console_host
    )
    uvicorn.run(
        app,
        host=settings.console_host,
        port=settings.console_port,
        log_level="info",
        timeout_graceful_shutdown=3,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
