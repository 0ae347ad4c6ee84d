SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def is_safe_method(method: str) -> bool:
    """Safe methods only read, so their transactions need no write lock."""
    return method in SAFE_METHODS
