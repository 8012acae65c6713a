"""A guard against a hang, for tests of hostile input: not a timing.

The tests feed inputs that once made tlbook loop forever or work for hours (a seek backwards, a
quadratic pattern, an exponential repr). A time bound in seconds would fail on a loaded machine;
this one is set two orders of magnitude above the normal cost, so it only catches the hang itself.
"""

import contextlib
import signal

HANG_SECONDS = 60


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS):
    """Raise ``TimeoutError`` if the block runs ``seconds`` of wall time (main thread, POSIX only)."""

    def stop(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: the input made the code hang")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
