"""Benchmark of the generated services against two hand-written baselines (not part of the
test run; `uv run python -m bench --help`)."""
