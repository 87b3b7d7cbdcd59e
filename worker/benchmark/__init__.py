"""`claimcoder bench`: the worker's throughput, latency and memory against pass-through baselines.

``claims`` makes the claims, ``passthrough`` the baseline workers, ``measure`` publishes and
times one run, ``suite`` runs them all on one broker and ``plot`` draws the latencies.
"""
