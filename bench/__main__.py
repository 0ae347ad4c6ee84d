"""`uv run python -m bench`: render generated services, seed, serve and load them with wrk, next
to two baselines, and print one table. See bench/README.md (`--help` for every option)."""

from bench.cli import main

main()
