"""The worker lease: exactly one worker collects, judges and delivers at a time.

Every worker calls :meth:`Lease.acquire` at the start of each round; the one that gets
``True`` does the round, the others wait for the next interval.  The lease dies with its
holder, so a standby takes over at its next round (within one interval) after the leader
is killed, without a timeout to tune.

How it is held, per database:

- **PostgreSQL** (cluster): a session-level advisory lock, ``pg_try_advisory_lock(key)``
  on a dedicated connection kept open while held.  The server drops it the moment that
  connection closes: process killed, pod deleted, connection reset.  The session's TCP
  keepalives are shortened so a holder whose node vanished without closing the socket is
  noticed in about 25 s instead of the kernel's default two hours
  (https://www.postgresql.org/docs/current/runtime-config-connection.html).
- **SQLite** (one machine): an exclusive ``flock`` on a file next to the database
  (``cutover.db.<name>.lease``).  The kernel releases it when the holder's process ends,
  however it ends, which a lease row with an expiry cannot match without a timeout.  It
  works wherever SQLite itself is safe: local disks, not NFS.  An in-memory database has
  no file and no other process can see it, so its lease is a lock within the process.

A lease is not a fence: a leader cut off from the database keeps running its current
round until its next ``acquire`` finds the connection gone and steps down.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from slo.errors import ConfigError, StoreError

__all__ = ["Lease", "advisory_key"]

log = logging.getLogger(__name__)

#: server-side keepalives for the lease's session: idle 10 s, then 3 probes 5 s apart
_PG_KEEPALIVES = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5,
                  "tcp_keepalives_count": 3}


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lease name (same on every host)."""
    digest = hashlib.sha256(f"cutover.lease:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Holder(Protocol):
    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...


class Lease:
    """A named, non-blocking leadership lease on the store's database."""

    def __init__(self, engine: Engine, *, name: str = "worker", holder: str | None = None):
        if not name or len(name) > 100:
            raise ConfigError(f"expected a lease name of 1 to 100 characters, got {name!r}")
        self.name = name
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self._impl = _holder_for(engine, name=name, holder=self.holder)
        self._held = False
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        """True while this object holds the lease (as of the last acquire)."""
        return self._held

    def acquire(self) -> bool:
        """Take or keep the lease; never blocks.  True when this holder leads now."""
        with self._mutex:
            if self._held and self._impl.still_held():
                return True
            if self._held:
                log.warning("lease %r lost by %s: its connection is gone", self.name,
                            self.holder)
                self._impl.release()
            self._held = self._impl.try_acquire()
            if self._held:
                log.info("lease %r acquired by %s", self.name, self.holder)
            return self._held

    def release(self) -> None:
        """Give the lease up (a no-op when not held)."""
        with self._mutex:
            if self._held:
                log.info("lease %r released by %s", self.name, self.holder)
            self._impl.release()
            self._held = False

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease(name={self.name!r}, holder={self.holder!r}, held={self._held})"


def _holder_for(engine: Engine, *, name: str, holder: str) -> _Holder:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return _PgAdvisoryLock(engine, key=advisory_key(name))
    if dialect == "sqlite":
        db = engine.url.database
        if not db or db == ":memory:":
            return _ProcessLock(name)
        return _FileLock(Path(f"{db}.{name}.lease"), holder=holder)
    raise ConfigError(f"no lease for database {dialect!r}: use sqlite or postgresql")


class _PgAdvisoryLock:
    """``pg_try_advisory_lock`` on a connection of its own, open while held."""

    def __init__(self, engine: Engine, *, key: int):
        # Connections of its own, outside the pool: a session that held the lock must
        # never be handed to other code, even when a Lease is dropped without release().
        self._engine = create_engine(engine.url, poolclass=NullPool)
        self._key = key
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        try:
            # autocommit: an idle session must not sit "idle in transaction"
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as e:
            log.warning("lease: cannot reach PostgreSQL: %s", e.__class__.__name__)
            return False
        try:
            for setting, value in _PG_KEEPALIVES.items():
                conn.execute(text(f"SET {setting} = {int(value)}"))
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": self._key}).scalar())
        except SQLAlchemyError as e:
            log.warning("lease: lock query failed: %s", e.__class__.__name__)
            _discard(conn)
            return False
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(SQLAlchemyError):  # gone: the lock went with it
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        _discard(conn)


def _discard(conn: Connection) -> None:
    try:
        conn.invalidate()
        conn.close()
    except SQLAlchemyError:
        pass


class _FileLock:
    """An exclusive ``flock`` on a file; the kernel drops it when the process ends."""

    def __init__(self, path: Path, *, holder: str):
        self._path = path
        self._holder = holder
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o660)
        except OSError as e:
            raise StoreError(f"cannot open the lease file {self._path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # who holds it, for someone looking at the file; the lock itself is the flock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self._holder}\n".encode(), 0)
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock


_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


class _ProcessLock:
    """For an in-memory SQLite store, which no other process can see."""

    def __init__(self, name: str):
        with _PROCESS_LOCKS_GUARD:
            self._lock = _PROCESS_LOCKS.setdefault(name, threading.Lock())
        self._mine = False

    def try_acquire(self) -> bool:
        self._mine = self._lock.acquire(blocking=False)
        return self._mine

    def still_held(self) -> bool:
        return self._mine

    def release(self) -> None:
        if self._mine:
            self._mine = False
            self._lock.release()
