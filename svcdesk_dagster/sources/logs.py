"""What the project changes in dlt's and urllib3's logs: keys taken out, one false alarm dropped.

Installed when a read opens (`read.py`), not at import, so that importing the sources changes no
logger.
"""

from __future__ import annotations

import logging

from svcdesk_dagster.sources.redaction import redact


class RedactingLogFilter(logging.Filter):
    """Takes keys out of log records: urllib3 logs every request line, query string included,
    at DEBUG, which is the first level anyone turns on when a sync misbehaves."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


LOGGERS_THAT_QUOTE_URLS = ("urllib3.connectionpool", "dlt")


class ReplaceIgnoresHardDelete(logging.Filter):
    """Drops dlt's warning that a full refresh (replace) ignores the `hard_delete` hint on
    `deleted_at`: expected, since the plain listing a full refresh reads holds no deleted tickets,
    and it would otherwise greet every full refresh in the run log as if something were wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "hint is only applied when using the \"merge\" write disposition" not in str(record.msg)


_REDACTING = RedactingLogFilter()
_REPLACE_IGNORES_HARD_DELETE = ReplaceIgnoresHardDelete()


def install_log_filters() -> None:
    """Installs both filters on the loggers they serve (idempotent)."""
    for name in LOGGERS_THAT_QUOTE_URLS:
        _add_once(logging.getLogger(name), _REDACTING)
    _add_once(logging.getLogger("dlt"), _REPLACE_IGNORES_HARD_DELETE)


def _add_once(logger: logging.Logger, log_filter: logging.Filter) -> None:
    if log_filter not in logger.filters:
        logger.addFilter(log_filter)
