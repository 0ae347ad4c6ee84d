"""Requests take their turn for a database connection in the order they asked for one.

When every pooled connection is in use, SQLAlchemy's asyncio pool gives a returned connection to
whichever task asks next: a newcomer can take it before the waiter that was woken for it runs
(asyncio.Queue), so under sustained load a request can be passed over until its pool timeout
ends it. A queue in front of the pool, with one place per connection, serves them first come,
first served (asyncio.Semaphore hands a released place to its oldest waiter).
"""

import asyncio
import time

from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class ConnectionQueue:
    def __init__(self, places: int, timeout: float) -> None:
        self._places = asyncio.Semaphore(places)
        self._timeout = timeout
        self.waiting = 0
        """Requests waiting for a place now."""

    async def enter(self) -> float:
        """Wait for a place, behind everyone already waiting, and return the seconds waited;
        PoolTimeoutError after `timeout` seconds (answered 503, see errors.py)."""
        if not self._places.locked():
            await self._places.acquire()  # free: returns at once
            return 0.0
        started = time.monotonic()
        self.waiting += 1
        try:
            async with asyncio.timeout(self._timeout):
                await self._places.acquire()
        except TimeoutError:
            msg = f"no database connection became free within {self._timeout:g} s"
            raise PoolTimeoutError(msg) from None
        finally:
            self.waiting -= 1
        return time.monotonic() - started

    def leave(self) -> None:
        self._places.release()
