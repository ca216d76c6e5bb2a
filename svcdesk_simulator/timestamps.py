"""Millisecond timestamps: the simulator keeps every time as integer milliseconds since
1970 (cheap to store in arrays and to compare) and formats them only when a record is
serialised, in the contract's shape ``2026-11-20T08:15:02.517Z``."""

from __future__ import annotations

import datetime as dt

DAY_MS = 86_400_000
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_ONE_US = dt.timedelta(microseconds=1)


_DATES: dict[int, str] = {}  # day number -> "YYYY-MM-DD"; a few thousand days at most
# "HH:MM" for each minute of a day and "SS.mmm" for each millisecond of a minute (3 MB,
# 15 ms at import): formatting becomes three lookups.
_MINUTES = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))
_SECONDS = tuple(f"{s:02d}.{ms:03d}" for s in range(60) for ms in range(1000))


def _date_part(day: int) -> str:
    date = _DATES[day] = (_UNIX_EPOCH + dt.timedelta(days=day)).date().isoformat()
    return date


def iso_ms(ms: int) -> str:
    """Format milliseconds since 1970 as ISO 8601 UTC with millisecond precision and ``Z``.

    Table lookups instead of ``datetime.isoformat`` because this runs two to four times
    per generated record: 0.25 us instead of 1.1 us, a quarter of a record's generation time."""
    day, rem = divmod(ms, DAY_MS)
    minute, milli = divmod(rem, 60_000)
    return f"{_DATES.get(day) or _date_part(day)}T{_MINUTES[minute]}:{_SECONDS[milli]}Z"


def parse_iso_ms(value: str) -> int:
    """Parse an ISO 8601 timestamp that carries a UTC offset (``Z`` or ``+hh:mm``).

    Returns milliseconds, rounded *up* when the value has sub-millisecond digits, so that
    ``updated_at_ms >= result`` is exactly the inclusive ``updated_at >= value`` test on
    millisecond-precision ``updated_at`` values. Raises ``ValueError`` for anything else,
    including naive timestamps: the contract only speaks of UTC timestamps, and guessing a
    zone would hide client bugs."""
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a UTC offset: {value!r}")
    micros = (parsed - _UNIX_EPOCH) // _ONE_US
    return -(-micros // 1000)


def datetime_ms(moment: dt.datetime) -> int:
    """Milliseconds since 1970 of an aware datetime (truncated)."""
    return (moment - _UNIX_EPOCH) // dt.timedelta(milliseconds=1)
