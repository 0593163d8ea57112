"""An exclusive lock on a run folder, held for the whole run (issue 11, defect 3).

Two processes writing one folder would mix files of two runs (``config.yaml`` of one, checkpoints of
the other). ``fcntl.flock`` on ``<run_dir>/.lock`` excludes them; the kernel drops the lock when its
process dies (SIGKILL included), so a stale lock file never blocks a later run. The holder writes its
pid into the file so that a refused process can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["RunLock", "RunLockedError", "LOCK_NAME"]

LOCK_NAME = ".lock"

#: Locks this process holds: resolved folder -> [open file, depth] (re-entrant: cached_run, then fit).
_HELD: dict[Path, list] = {}


class RunLockedError(RuntimeError):
    """Another process holds the run folder; the message names its pid and the fix."""

    def __init__(self, run_dir: Path, pid: int | None) -> None:
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"{run_dir} is in use by {holder} (another training run); wait for it to finish or choose "
            "another --run-dir"
        )


class RunLock:
    """``with RunLock(run_dir):`` the caller is the only process using ``run_dir``.

    ``wait=False`` refuses at once with ``RunLockedError``; ``wait=True`` blocks until the holder ends.
    """

    def __init__(self, run_dir: str | Path, wait: bool = False) -> None:
        self.run_dir, self.wait = Path(run_dir), wait

    def __enter__(self) -> "RunLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.key = self.run_dir.resolve()
        if self.key in _HELD:
            _HELD[self.key][1] += 1
        else:
            _HELD[self.key] = [_acquire(self.run_dir, self.wait), 1]
        return self

    def __exit__(self, *exc) -> None:
        entry = _HELD[self.key]
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[self.key]
            fcntl.flock(entry[0].fileno(), fcntl.LOCK_UN)
            entry[0].close()


def _acquire(run_dir: Path, wait: bool):
    """Open and flock ``run_dir/.lock``, then write our pid into it; refuse naming the holder's pid."""
    f = open(run_dir / LOCK_NAME, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        f.seek(0)
        text = f.read().strip()
        f.close()
        raise RunLockedError(run_dir, int(text) if text.isdigit() else None) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f
