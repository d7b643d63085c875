"""`make bench`: the figures behind docs/PERFORMANCE.md (see scripts/bench.py)."""
