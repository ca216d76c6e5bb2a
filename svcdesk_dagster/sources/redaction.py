"""Where the key travels, and how it is taken out of any text: the one rule, with no HTTP stack.

Both vendors take the key as the `api_key` query parameter (docs/contract.md, Authentication), so
any text that quotes a request URL shows it. `redact` takes it out; the HTTP session (`http.py`)
applies it to every error it raises and the log filters (`logs.py`) to every log line, and the
failure alerts use it as a last scrub. It imports nothing heavier than `re`, so the code location
can use it without loading the HTTP stack when it loads.
"""

from __future__ import annotations

import re

API_KEY_PARAM = "api_key"
"""The query parameter both vendors take the key in."""
REDACTED = "***"
_QUERY_SECRET = re.compile(rf"(?i)({API_KEY_PARAM}=)[^&#\s'\"]+")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Removes API keys from a text: any `api_key=` query value and every known secret verbatim."""
    text = _QUERY_SECRET.sub(rf"\g<1>{REDACTED}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
