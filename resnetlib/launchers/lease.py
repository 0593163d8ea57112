"""A lock on a run folder that holds across the hosts of a cluster (issue 23, item 2).

The run cache's own lock (``resnetlib.train.lock.RunLock``, ``fcntl.flock``) excludes processes on one host.
On a shared file system it is not enough: NFSv3 without lockd and Lustre mounted ``localflock`` grant
``flock`` per client (two hosts both "hold" it), and nothing in the file system can tell a live holder on
another host from a dead one. A cluster job therefore first takes a *lease* on the folder:

- **Acquire** by hard-linking a fully written, uniquely named owner file to ``<runs_dir>/<run>.lease``
  (``os.link`` fails if the name exists, atomically, NFS included: the recipe of open(2)'s O_EXCL notes;
  a lost NFS reply is detected by the link count of our own file, 2 when the link was made). The owner
  file names the host, pid, SLURM job id, a random token and the time, so a refused job can name the
  holder, and the lease is beside the run folder (not inside), so ``force`` moving the folder aside never
  moves the lease with it.
- **Heartbeat**: while held, a thread touches the lease every ``beat`` seconds (``os.utime``: on NFS the
  server's clock sets the mtime) after checking that the token in it is still ours.
- **Stale rule**: a lease whose mtime is older than ``stale_after`` seconds (its holder's host died, or the
  job was killed before it could remove it), or whose holder is a process of *this* host that no longer
  exists, is broken: renamed to a unique name, re-read, and removed if it is still the lease that was
  judged stale (two breakers cannot both win; one that renamed a fresh lease by mistake links it back).
- **Lost lease**: a holder whose token is gone (a breaker judged it stale: its host stalled longer than
  ``stale_after``) stops its process at once (exit status ``LOST_EXIT``) rather than write a folder that
  another job now owns; the launcher resubmits it, and it waits for the new holder and loads its run.

Clocks: ages compare this host's clock with mtimes the file server sets; ``stale_after`` (default 5
minutes) must exceed the hosts' clock skew (NTP keeps it well below a second).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Lease", "LeaseHeldError", "lease_path", "LOST_EXIT", "LEASE_SUFFIX"]

LEASE_SUFFIX = ".lease"
#: Exit status of a process that lost its lease (``os._exit``: no cleanup may write the folder).
LOST_EXIT = 75


class LeaseHeldError(RuntimeError):
    """Another live job holds the run folder; the message names it and the fix."""


def lease_path(run_dir: str | Path) -> Path:
    """``<runs_dir>/<run>.lease``: beside the run folder, so moving the folder aside keeps the lease."""
    run_dir = Path(run_dir)
    return run_dir.with_name(run_dir.name + LEASE_SUFFIX)


def _read_owner(path: Path) -> dict[str, Any] | None:
    """The owner record of a lease file, or None where it is gone or unreadable."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _process_exists(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (one we may not signal still exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(owner: dict[str, Any] | None) -> str:
    """The holder as a person reads it: ``host node12, pid 4242, SLURM job 991``."""
    if not owner:
        return "an unknown holder"
    job = f", SLURM job {owner['job']}" if owner.get("job") else ""
    return f"host {owner.get('host')}, pid {owner.get('pid')}{job}"


class Lease:
    """``with Lease(lease_path(run_dir)):`` this job is the only one, on any host, using the run folder.

    ``wait=True`` polls every ``poll`` seconds until the holder releases it or turns stale;
    ``wait=False`` raises ``LeaseHeldError`` naming the holder. ``on_lost`` is called (from the heartbeat
    thread) if the lease is taken away; the default ends the process with ``LOST_EXIT``.
    """

    def __init__(self, path: str | Path, *, stale_after: float = 300.0, beat: float = 30.0, wait: bool = True,
                 poll: float = 2.0, on_lost: Callable[[Path], None] | None = None) -> None:
        if not 0 < beat < stale_after:
            raise ValueError(f"lease beat {beat}s must be positive and below stale_after {stale_after}s; "
                             "choose a beat of about a tenth of stale_after")
        self.path, self.stale_after, self.beat = Path(path), stale_after, beat
        self.wait, self.poll = wait, poll
        self.on_lost = on_lost or _exit_lost
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def owner(self) -> dict[str, Any]:
        """What the lease file says about its holder (this process)."""
        return {"host": socket.gethostname(), "pid": os.getpid(), "job": os.environ.get("SLURM_JOB_ID"),
                "token": self.token, "since": time.time()}

    def __enter__(self) -> "Lease":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self._try_acquire():
            holder = _read_owner(self.path)
            if self._is_stale(holder):
                _break(self.path, holder)
                continue
            if not self.wait:
                raise LeaseHeldError(f"{self.path} is held by {describe(holder)}; wait for that job to end, "
                                     "or remove the file if that job is certainly gone")
            time.sleep(self.poll)
        self._thread = threading.Thread(target=self._heartbeat, name=f"lease {self.path.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held():
            self.path.unlink(missing_ok=True)

    def held(self) -> bool:
        """Whether the lease file still carries this holder's token."""
        return (_read_owner(self.path) or {}).get("token") == self.token

    def _try_acquire(self) -> bool:
        """Link a complete owner file to the lease's name; True when the link is ours."""
        mine = self.path.with_name(f".{self.path.name}.{self.token}")
        mine.write_text(json.dumps(self.owner()))
        try:
            os.link(mine, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # NFS: the link may exist although the reply was lost
            return mine.stat().st_nlink == 2
        finally:
            mine.unlink(missing_ok=True)

    def _is_stale(self, holder: dict[str, Any] | None) -> bool:
        """The stale rule: no heartbeat for ``stale_after`` seconds, or a holder process of this host that is
        gone."""
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False  # released meanwhile: the next try takes it
        if age > self.stale_after:
            return True
        same_host = holder is not None and holder.get("host") == socket.gethostname()
        return same_host and isinstance(holder.get("pid"), int) and not _process_exists(holder["pid"])

    def _heartbeat(self) -> None:
        """Every ``beat`` seconds: check the token is still ours, then touch the lease."""
        while not self._stop.wait(self.beat):
            if not self.held():
                self.on_lost(self.path)
                return
            try:
                os.utime(self.path)
            except FileNotFoundError:
                self.on_lost(self.path)
                return


def _break(path: Path, judged: dict[str, Any] | None) -> None:
    """Remove a stale lease: rename it aside, and remove it only if it is the one judged stale."""
    grave = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(path, grave)
    except FileNotFoundError:
        return  # another breaker (or its holder) was first
    taken = _read_owner(grave)
    if taken is not None and taken.get("token") != (judged or {}).get("token"):
        try:  # a fresh lease replaced the stale one between our look and our rename: give it back
            os.link(grave, path)
        except FileExistsError:
            pass  # yet another holder came first; the displaced one sees the loss at its next beat
    grave.unlink(missing_ok=True)


def _exit_lost(path: Path) -> None:
    """Default reaction to a lost lease: say so and end the process before it writes another job's folder."""
    print(f"resnetlib: lost the lease {path} (no heartbeat could be written for too long, and another job "
          f"took the run); stopping this job, the launcher resubmits it", file=sys.stderr, flush=True)
    os._exit(LOST_EXIT)
