"""Progress that shows in logs: one line per stage of a fit, and sampling every 10 %.

Every line goes to the ``logging`` logger ``bayes_alliance.progress`` (a child of
``bayes_alliance``) at level INFO, so a batch job, a notebook or a cluster log sees it by
configuring logging (``logging.basicConfig(level=logging.INFO)``); the command line sends it to
standard error (:func:`bayes_alliance.cli.app.main`). Nothing here changes what is sampled.

Stages (:func:`stage`): reading data, building the model, compiling (or taking the compiled
model from the cache), sampling, post-hoc draws, writing. While nutpie samples,
:class:`SamplingLog` receives nutpie's progress callback (``nutpie.sample(...,
progress_callback=...)``: one ``ChainProgress`` per chain with ``finished_draws`` and
``total_draws``, tuning included) and logs a line each time another 10 % of all chains' draws
are done, with the time elapsed and an estimate of the time left, and once, early, an estimate
of the whole sampling time (:func:`estimate_total`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

log = logging.getLogger("bayes_alliance.progress")

# ``record.progress`` of a sampling line: a terminal that shows nutpie's own progress bar skips
# these (the stage lines still show).
SAMPLING = "sampling"
# The first estimate waits for this share of all draws (and EARLY_SECONDS of sampling): fewer
# draws than that time too little of the warm-up to extrapolate from.
EARLY_SHARE = 0.02
EARLY_SECONDS = 2.0


class ChainProgress(Protocol):
    """What :class:`SamplingLog` reads of nutpie's ``ChainProgress``."""

    @property
    def finished_draws(self) -> int: ...

    @property
    def total_draws(self) -> int: ...

    @property
    def divergences(self) -> int: ...


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``1 h 02 min``: a duration for a log line."""
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 3600:
        m, r = divmod(round(s), 60)
        return f"{m} min {r} s"
    h, r = divmod(round(s), 3600)
    return f"{h} h {r // 60:02d} min"


def estimate_total(done: int, total: int, elapsed: float) -> float:
    """Seconds the whole sampling will take, extrapolated linearly from the draws done.

    .. math:: \\hat T = t \\, N / n

    for :math:`n` of :math:`N` draws (all chains, warm-up included) done in :math:`t` seconds.
    It is an estimate: warm-up draws early on can take longer trajectories than later ones
    (or shorter, while the step size is still large), so the first estimate can be off by a
    factor of two either way; the 10 % lines update it.

    Raises
    ------
    ValueError
        No draw done yet, or counts out of order.
    """
    if done <= 0 or total <= 0 or done > total or elapsed < 0:
        raise ValueError(f"need 0 < done <= total and elapsed >= 0, got {done}, {total}, {elapsed}")
    return elapsed * total / done


def stage(message: str, *args: object) -> None:
    """One line for a stage of a fit (``log.info`` on ``bayes_alliance.progress``)."""
    log.info(message, *args)


@contextlib.contextmanager
def timed_stage(message: str, clock: Callable[[], float] = time.perf_counter) -> Iterator[None]:
    """A stage line on entry and ``... done in N s`` on exit."""
    log.info("%s ...", message)
    t0 = clock()
    yield
    log.info("%s: done in %s", message, duration(clock() - t0))


class SamplingLog:
    """nutpie's progress callback, as log lines every ``step`` of all draws.

    Parameters
    ----------
    step
        The share of all draws between two lines (default 10 %).
    clock
        Seconds, monotonic (a fake one in tests); the elapsed time is counted from the first
        call.
    logger
        Where the lines go (default: ``bayes_alliance.progress``).

    nutpie calls it from its own thread (every ``progress_rate`` milliseconds) with one
    ``ChainProgress`` per chain; a lock keeps the lines in order.
    """

    def __init__(
        self,
        step: float = 0.1,
        clock: Callable[[], float] = time.perf_counter,
        logger: logging.Logger | None = None,
    ) -> None:
        if not 0 < step <= 1:
            raise ValueError(f"step must be in (0, 1], got {step}")
        self.step = step
        self.clock = clock
        self.logger = logger or log
        self.start: float | None = None
        self.next_share = step
        self.estimated = False
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, chains: Sequence[ChainProgress]) -> None:
        with self._lock:
            now = self.clock()
            if self.start is None:
                self.start = now
            done = sum(int(c.finished_draws) for c in chains)
            total = sum(int(c.total_draws) for c in chains)
            if total <= 0 or done <= 0:
                return
            elapsed = now - self.start
            share = done / total
            if not self.estimated and share >= EARLY_SHARE and elapsed >= EARLY_SECONDS:
                self.estimated = True
                whole = estimate_total(done, total, elapsed)
                self._emit(
                    "sampling will take about %s in all (an estimate, extrapolated from the "
                    "first %d of %d draws)",
                    duration(whole),
                    done,
                    total,
                )
            if share + 1e-12 < self.next_share:
                return
            reached = math.floor(share / self.step + 1e-9) * self.step
            self.next_share = reached + self.step
            divergences = sum(int(getattr(c, "divergences", 0)) for c in chains)
            left = estimate_total(done, total, elapsed) - elapsed
            tail = "" if done == total else f", about {duration(left)} left (estimate)"
            div = f", {divergences} divergent" if divergences else ""
            self._emit(
                "sampling %3.0f%%: %d of %d draws (%d chains, warm-up included)%s, %s elapsed%s",
                100 * min(reached, 1.0),
                done,
                total,
                len(chains),
                div,
                duration(elapsed),
                tail,
            )

    def _emit(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)
        self.logger.info(message, *args, extra={"progress": SAMPLING})


__all__ = [
    "SAMPLING",
    "ChainProgress",
    "SamplingLog",
    "duration",
    "estimate_total",
    "stage",
    "timed_stage",
]
