"""Logging set-up for the entry points: rich output for the ``fingerquant`` loggers."""

import logging

from rich.logging import RichHandler


def setup_logging(level: int = logging.INFO) -> None:
    """Send ``fingerquant`` log records at ``level`` and above to a rich console handler."""
    logger = logging.getLogger("fingerquant")
    if not any(isinstance(handler, RichHandler) for handler in logger.handlers):
        logger.addHandler(RichHandler(show_path=False, show_time=False))
    logger.setLevel(level)
    logger.propagate = False
