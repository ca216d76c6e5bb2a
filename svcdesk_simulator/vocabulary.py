"""Word lists and pre-escaped JSON fragments the record generators pick from.

Every text value a generated record can hold is built here once, already escaped as JSON
(``json.dumps`` of a string, quotes included). JSON string escaping works character by
character, so a record's JSON can be assembled by concatenating these fragments without
escaping anything per request. The texts deliberately carry what breaks naive pipelines:
accents, CJK, right-to-left scripts, emoji (including ZWJ sequences and flags), combining
marks, quotes, backslashes, tabs, CR/LF, U+2028, HTML and SQL-looking text.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from itertools import product

# Bounded: a fixed vocabulary keeps the generators allocation-free per record.
DESCRIPTION_POOL_SIZE = 1024
TAG_SET_POOL_SIZE = 128
ASSIGNEE_SET_POOL_SIZE = 128


def jtext(text: str) -> str:
    """A string as a JSON literal (with quotes), UTF-8 kept as is (no ``\\u`` escapes)."""
    return json.dumps(text, ensure_ascii=False)


SENTENCES = (
    "The customer cannot log in since this morning's update.",
    "Le client ne peut plus se connecter depuis la mise à jour — réessayé trois fois.",
    "Kunde meldet: Drucker im 3. Stock zeigt „Papierstau“ an, obwohl das Fach leer ist.",
    "ユーザーがログインできません。パスワードは昨日リセットしました。",
    "用户无法访问报表页面，错误代码 500。请尽快处理！",
    "고객이 결제 페이지에서 오류를 봅니다.",
    "Ошибка при синхронизации календаря после перехода на летнее время.",
    "العميل لا يستطيع الوصول إلى حسابه منذ أمس.",
    "שגיאה בהתחברות למערכת ה-VPN.",
    "Reported from phone 📱: screen freezes 😩 after the 🔔 notification, see 👩‍💻 notes 🏳️‍🌈 ✅",
    "Path in the log: C:\\Users\\jdoe\\AppData\\Local\\Temp\\install.log",
    'Error text: "Unexpected token \'<\' in JSON at position 0"',
    "Stack trace:\n\tat com.example.Foo.bar(Foo.java:42)\n\tat com.example.Main.main(Main.java:7)",
    "Pasted from Outlook with Windows line endings\r\nsecond line\r\nthird line",
    "Combining marks: e\u0301 n\u0303 a\u030a — and precomposed: é ñ å.",
    "Prices: €100, £5, ¥300, ½ off; math: ∑ x² ≤ ∞.",
    "Invisible characters: a\u200bb, no-break\u00a0space, soft\u00adhyphen.",
    "<script>alert('x')</script> &amp; <b>bold</b> copied from the web form",
    "Tab\tseparated\tvalues\tfrom\ta\tspreadsheet",
    "SQL they ran: SELECT * FROM tickets WHERE customer = 'O''Brien';",
    'JSON in the text: {"key": [1, 2, {"nested": null}], "ok": true}',
    "Link: https://example.com/path?query=a%20b&x=y#frag",
    "A line\u2028separator and a paragraph\u2029separator from a JavaScript client.",
    "Zoë Ødegaard and Siobhán Ní Bhriain confirmed the workaround works.",
    "Backslash run: \\\\server\\share\\ and a lone trailing backslash \\",
    "Please call back after 5 pm; the office in São Paulo is closed on Friday.",
    "   Leading and trailing spaces are part of the text.   ",
    "Still broken. Still broken. Still broken.",
)

TICKET_AREAS = (
    "Printer", "VPN", "Email", "Laptop", "Password reset", "Invoice", "Wi-Fi",
    "Calendar sync", "CRM", "Payroll", "Badge access", "Shared drive", "Mobile app",
    "Monitor", "Café Wi‑Fi", "Größenänderung", "プリンター", "报表", "Zoë's mailbox",
    'Teams "General" channel', "C:\\ drive", "Ordinateur portable",
)
TICKET_PROBLEMS = (
    "not working", "is slow", "keeps crashing", "access request", "shows error 0x80070005",
    "won't sync", "needs replacement", "login loop", 'returns "403 Forbidden"', "question",
    "how-to", "— urgent!", "после обновления", "ne fonctionne plus", "🔥 down again",
    "cannot print double-sided",
)
TAGS = (
    "billing", "vpn", "hardware", "software", "access", "urgent", "vip", "onboarding",
    "network", "security", "mobile", "follow-up", "größe", "客户", "é-mail",
)
CHANNELS = ("email", "web", "phone", "chat", "api")
PRODUCTS = ("Widget Pro", "Widget Lite", "Gadget", "Gizmo Cloud", "Café POS", "Analytics")
SLA_MINUTES = (30, 60, 240, 480, 1440)

COMPONENTS = (
    "Checkout API", "Login service", "Payments gateway", "Search cluster", "Message queue",
    "Primary database", "CDN edge", "Billing batch job", "Auth token issuer", "Mobile push",
    "Data warehouse load", "Kubernetes node pool", "DNS resolver", "Email relay",
    "Service d'impression", "決済API",
)
SYMPTOMS = (
    "latency above threshold", "error rate > 5%", "is down", "disk usage at 95%",
    "certificate expires in 7 days", "memory leak suspected", "5xx spike",
    "queue backlog growing", "replication lag", "health check failing", "CPU saturation",
    "p99 response time > 2s", '"connection refused" errors',
)
SERVICE_SUFFIXES = ("", " (staging)", " EU", " US", " – legacy", " v2")
SERVICE_DESCRIPTIONS = (
    "Customer-facing API.", "Internal batch processing.", "Owned by the platform team.",
    "Tier 1 — pages the on-call engineer 24/7.", "Runs in eu-west-1 and us-east-1.",
    'Depends on the "Primary database" service.', "Dienst für die Rechnungsstellung.",
    "監視対象のサービス", "Deprecated; see the migration plan.",
)
FIRST_NAMES = (
    "Ana", "Zoë", "José", "Björn", "Siobhán", "Łukasz", "Mei", "Hiroshi", "Aarav", "Fatima",
    "Olusegun", "Chloé", "Thảo", "Søren", "Ingrid", "Kwame",
)
LAST_NAMES = (
    "García", "Ødegaard", "O'Brien", "Nowak", "Müller", "Tanaka", "Sharma", "Al-Hassan",
    "Adeyemi", "Dubois", "Nguyễn", "Lindqvist", "王", "Smith",
)


def _sentences(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(SENTENCES) for _ in range(count))


def _description(rng: random.Random) -> str:
    """One description: mostly a sentence or two, sometimes paragraphs, 3 in 100 several KB."""
    roll = rng.random()
    if roll < 0.80:
        return _sentences(rng, rng.randint(1, 2))
    if roll < 0.97:
        return "\n\n".join(_sentences(rng, rng.randint(2, 4)) for _ in range(rng.randint(2, 3)))
    target = rng.randint(2_000, 6_000)
    paragraphs: list[str] = []
    while sum(map(len, paragraphs)) < target:
        paragraphs.append(_sentences(rng, rng.randint(3, 6)))
    return "\n\n".join(paragraphs)


@lru_cache(maxsize=8)
def description_pool(seed: int) -> tuple[str, ...]:
    """Pre-escaped descriptions for one seed (cached: several simulators may share a seed)."""
    rng = random.Random(f"{seed}:descriptions")
    return tuple(jtext(_description(rng)) for _ in range(DESCRIPTION_POOL_SIZE))


@lru_cache(maxsize=1)
def tag_sets() -> tuple[str, ...]:
    """Pre-encoded tag arrays; about a quarter are empty."""
    rng = random.Random("tag-sets")
    sets = []
    for _ in range(TAG_SET_POOL_SIZE):
        count = 0 if rng.random() < 0.25 else rng.randint(1, 4)
        sets.append(json.dumps(rng.sample(TAGS, count), ensure_ascii=False, separators=(",", ":")))
    return tuple(sets)


@lru_cache(maxsize=1)
def people() -> tuple[dict[str, str], ...]:
    """On-call responders that incidents are assigned to."""
    return tuple(
        {"id": f"USR{k:04d}", "name": f"{FIRST_NAMES[k % len(FIRST_NAMES)]} {LAST_NAMES[(k * 7) % len(LAST_NAMES)]}"}
        for k in range(1, 65)
    )


@lru_cache(maxsize=1)
def assignee_sets() -> tuple[str, ...]:
    """Pre-encoded assignee arrays; about a quarter are empty."""
    rng = random.Random("assignee-sets")
    pool = people()
    sets = []
    for _ in range(ASSIGNEE_SET_POOL_SIZE):
        count = 0 if rng.random() < 0.25 else rng.randint(1, 3)
        sets.append(json.dumps(rng.sample(pool, count), ensure_ascii=False, separators=(",", ":")))
    return tuple(sets)


@lru_cache(maxsize=1)
def custom_field_sets() -> tuple[str, ...]:
    """Every ``custom_fields`` combination, pre-encoded; a generator indexes into it."""
    products = (*PRODUCTS, None)
    slas = (*SLA_MINUTES, None)
    return tuple(
        json.dumps({"channel": c, "product": p, "sla_minutes": s}, ensure_ascii=False, separators=(",", ":"))
        for c, p, s in product(CHANNELS, products, slas)
    )


def combined(firsts: tuple[str, ...], seconds: tuple[str, ...], separator: str = " ") -> tuple[str, ...]:
    """Every "first second" text, JSON-escaped without the quotes, for splicing into a
    literal: a record picks its subject or title with one lookup."""
    return tuple(jtext(f"{a}{separator}{b}")[1:-1] for a, b in product(firsts, seconds))
