"""A bundled simulator of the two upstream APIs, as the vendors document them, for the demo,
the tests and the benchmark: a real HTTP server on 127.0.0.1, deterministic from a seed, with
switches for every failure the contract promises and hooks to change data mid-sync.

    from svcdesk_simulator import Simulator, settings_for

    with Simulator(tickets=1_000, incidents=500, services=20, seed=42) as sim:
        sim.service_desk_url          # http://127.0.0.1:<port>/service-desk
        settings_for(sim)             # the environment that points a sync at both APIs
        sim.faults.fail_next(2)       # the next two requests answer 503
        sim.pace(250, jitter_ms=100)  # every answer takes 150-350 ms, like a distant vendor's
        sim.set_budget(1200, 60)      # 1,200 requests a minute per API key, in RateLimit-* headers
        sim.start_churn(30)           # 30 records change a minute, as other users work
        sim.live_tickets()            # what the destination should end up holding

It is a package of its own, importing nothing from the code location (``svcdesk_dagster``), so
starting it loads no Dagster. ``Simulator`` (``app.py``) is its one public object, made of one
part per job: the data (``vendor.py``, sized by ``VendorSize``), listings and paging
(``listings.py``), mutations (``mutations.py``), routing and auth (``routing.py``), hooks
(``hooks.py``), the request log (``request_log.py``), the clock (``clock.py``), the server's
lifecycle (``background.py``), and what makes it answer like a distant, rate-limited, busy
vendor: latency (``latency.py``), the request budget (``budget.py``) and churn (``churn.py``).

Design, and why:

* Data scales without being stored. A record is a pure function of (seed, resource, id):
  its fields are picked from a keyed BLAKE2b digest of the id (``data.py``). The only
  per-record state is a 6-byte timeline entry (creation jitter and update delay) so that
  ``updated_since`` can find ids without generating records, and creation times increase
  with the id, so a query only scans the ids created in the 90 days before its timestamp
  (``data.Timeline``). Base data lies in the two years before a fixed, seed-derived date
  in the past, never the wall clock, so a seed always gives the same bytes; 2% of the
  generated tickets are already soft-deleted. Mutations are kept as whole replacement
  records in a dict. A million tickets cost about 7 MB plus the bounded cache.
* Listings are answered by index arithmetic, not scans (``index.py``): a cached "base"
  match set per query (contiguous id ranges with holes) corrected by the mutated records,
  with rank/select by bisection, so a deep offset over a million tickets with deletions
  costs microseconds, and ``total`` is always exact for the moment of the request.
* Pre-serialised, because serving must never be the bottleneck of a client sync: the
  generators write each record's JSON text directly from pre-escaped fragments (about
  4 us a record), the encoded bytes are cached per 100-record chunk in a byte-bounded
  cache that fills once and never churns (``store.py``), and a page body is one
  ``b",".join``. Ground-truth dicts are decoded from
  the same bytes, so they equal what the API serves by construction.
* The HTTP layer (``server.py``) is ``http.server`` tuned for throughput: HTTP/1.1
  keep-alive, one thread per connection, a single write per response with Nagle off,
  Content-Length always, no per-request logging.

Measured on the 2-core development machine (client and server in one process, sharing
the GIL; the machine was shared, so figures varied by about 20%): 1,000 sequential pages
of 100 tickets (100,000 tickets, ~600 bytes each) with one ``requests.Session`` take
1.35-1.6 s on the first pass, when every record is generated, and 0.8-1.0 s once cached;
the client's own ``response.json()`` adds about 0.4 s. About 0.6 ms of each request is
``requests`` itself (0.2 ms of it ``trust_env`` reading proxy settings; 0.65-0.85 s cached
without it). With 1,000,000 tickets the simulator is built and started in 0.12 s and adds
12 MB of RSS; a deep page takes 5 ms, an ``updated_since`` query 35 ms for its first page
(2 ms after); paging through all of it, or iterating ``iter_live_tickets``, peaks at
+125 MB (the cache is full by then; it stops growing).
"""

from svcdesk_simulator.app import Simulator, serve_forever, settings_for
from svcdesk_simulator.budget import RATE_LIMIT_HEADER_STYLES, Budget
from svcdesk_simulator.faults import Faults
from svcdesk_simulator.hooks import HookHandle
from svcdesk_simulator.request_log import RequestInfo
from svcdesk_simulator.routing import ApiKeys
from svcdesk_simulator.vendor import VendorSize

__all__ = [
    "RATE_LIMIT_HEADER_STYLES", "ApiKeys", "Budget", "Faults", "HookHandle", "RequestInfo", "Simulator", "VendorSize",
    "serve_forever", "settings_for",
]
