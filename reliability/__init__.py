"""Reliability suite of the template: generated services under load, faults and bad
input, and past one process. See reliability/README.md.

    uv run python -m reliability --quick    # CI: 3 variants, every check, smaller loads
    uv run python -m reliability            # full: 15 variants
    uv run python -m reliability --list     # the plan, nothing run
"""
