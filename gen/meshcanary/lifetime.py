"""What a run keeps until its process ends: objects not worth freeing one at a time; and
whether the process may fork copies of itself (`can_fork`).

The console script leaves without tearing the interpreter down (`__main__.leave`), so what
a command built and no longer needs can be left where it is rather than freed: freeing the
parsed resources of a 20k-resource `lint` one object at a time took 50 ms. Called in-process
(tests, a library user), nothing is kept and everything is freed as usual.
"""

from __future__ import annotations

# Set by the console script, which ends its process as soon as the command returns.
LEAVING = False
_kept: list[object] = []


def keep(*objects: object) -> None:
    """Hold `objects` until the process ends, when it is about to."""
    if LEAVING:
        _kept.extend(objects)


def can_fork() -> bool:
    """Whether copies of this process may be forked: they share its objects as they are;
    elsewhere each would need them all pickled, which costs more than the work they share.
    Only with no other thread running: the copy would hold for ever a lock another thread
    held as it forked."""
    import sys
    import threading

    return sys.platform == "linux" and threading.active_count() == 1
