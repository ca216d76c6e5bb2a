"""The performance benchmark of the sync path: `./dev python -m bench` (README, Performance).

It measures, on one machine in one run, what a full read of N tickets costs at each layer: the
plain requests, the project's own dlt source in a bare dlt pipeline, and the project's
Dagster materialization of `tickets` run the way a user runs it (the `dagster` CLI). Every
measured path runs in a fresh subprocess, so its wall time includes its own start-up and its peak
RSS is its own; the simulator runs in the benchmark's parent process. See `bench/run.py`.

Nothing here is imported by the code location or the test suite.
"""
