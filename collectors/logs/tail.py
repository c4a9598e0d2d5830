"""Following a log file across rotations without losing or repeating a line.

A file is known by its identity: device and inode, and a SHA-256 of its first KiB (of
the *content*, so a rotated file keeps its identity when logrotate compresses it, and a
copy made by ``copytruncate`` is recognised).  The checkpoint of the live file (stream
``file``) holds that identity and the offset after the last complete line consumed; it
is committed with the rollups of those lines (:class:`Committer`).  Rotated files read
in a pass get a checkpoint of their own (stream ``rot:<hash>``), finished when its
``size`` equals its ``offset``.

One pass over a path:

1. the live file is the checkpointed one (same inode, not shorter, same head): go on
   from the offset;
2. it is not (renamed away, or truncated in place): find the checkpointed file among
   the rotated siblings (``path.1``, ``path.2.gz``, ``path-20261126``, ...) by inode or
   head hash, finish it from the offset, then every sibling rotated after it, then the
   new live file from its start;
3. with ``--from`` (a backfill), every rotated sibling not yet read comes first, oldest
   first, lines before the window skipped;
4. only complete lines are consumed: a line still being written waits for the next pass.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from collectors.logs.formats import MAX_LINE, Columns, count_lines
from collectors.logs.ingest import Ingestor
from collectors.logs.limits import PRIME_BYTES
from store.rollups import Checkpoint

__all__ = ["FileTail", "Piece", "head_hash", "open_log", "read_pieces", "rotated_siblings"]

log = logging.getLogger(__name__)

HEAD = 1024
LIVE = "file"


def open_log(path: Path) -> BinaryIO:
    """The file's content: gzip-compressed files (``*.gz``) are read decompressed."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def head_hash(path: Path, length: int = HEAD) -> str:
    """SHA-256 of the first ``min(length, HEAD)`` bytes of the file's content."""
    with open_log(path) as f:
        return hashlib.sha256(f.read(min(length, HEAD))).hexdigest()


def rotated_siblings(path: Path) -> list[Path]:
    """Files logrotate (or a gateway) made of ``path``: oldest first."""
    found = {p for pattern in (f"{path.name}.*", f"{path.name}-*")
             for p in path.parent.glob(pattern) if p.is_file() and p != path}
    return sorted(found, key=lambda p: (p.stat().st_mtime, -_number(p)))


def _number(p: Path) -> int:
    # access.log.3.gz is older than access.log.2.gz when their mtimes tie
    for part in reversed(p.name.split(".")):
        if part.isdigit():
            return int(part)
    return 0


@dataclass(frozen=True)
class Piece:
    """Complete lines read from ``start`` to ``end`` (offsets in the content)."""

    start: int
    end: int
    block: bytes          # the lines, without the last newline (b"" for none)
    lines: int
    too_long: int = 0     # lines over the limit, skipped unread before this block


def read_pieces(f: BinaryIO, offset: int, *, block_size: int) -> Iterator[Piece]:
    """Blocks of complete lines from ``offset``; a final line without its newline is
    left unread.  A line longer than MAX_LINE is skipped up to its newline and counted,
    so one endless line cannot hold the memory."""
    f.seek(offset)
    pos = offset          # content offset of carry[0]
    carry = b""
    skipping = False
    too_long = 0
    while True:
        data = f.read(block_size)
        if not data:
            return
        if skipping:
            nl = data.find(b"\n")
            if nl < 0:
                pos += len(data)
                continue
            pos += nl + 1
            data = data[nl + 1:]
            skipping = False
            too_long += 1
        cut = data.rfind(b"\n")      # the carry never holds one
        if cut < 0:
            buf = carry + data
            if len(buf) > MAX_LINE:
                skipping, carry = True, b""
                pos += len(buf)
            else:
                carry = buf
            if too_long:
                yield Piece(pos, pos, b"", 0, too_long)
                too_long = 0
            continue
        # one copy into the block (carry + data up to its last newline), not two
        block = b"".join((carry, memoryview(data)[:cut])) if carry else data[:cut]
        end = len(carry) + cut
        yield Piece(pos, pos + end + 1, block, count_lines(block), too_long)
        too_long = 0
        pos += end + 1
        carry = data[cut + 1:]


@dataclass(frozen=True)
class Target:
    """One file to read in a pass: from ``offset``, under checkpoint ``stream``."""

    path: Path
    offset: int
    stream: str

    @property
    def plain(self) -> bool:
        """Not gzip-compressed: its file descriptor holds the content itself."""
        return self.path.suffix != ".gz"


#: blocks read and parsed ahead of the one being rolled up (memory: this many blocks)
AHEAD = 2
_DONE = object()


Parsed = Generator[tuple[Piece, Columns | None], None, None]


def prefetched(pieces: Iterator[Piece], parse: Callable[[bytes], Columns]) -> Parsed:
    """The pieces with their blocks parsed, read and parsed up to AHEAD blocks ahead in a
    thread of their own.  The compiled scanner lets go of the GIL, so on two cores the
    next block is read and parsed while this one is rolled up and committed.  Parsing
    reads no state, so the result is the same as parsing in line; closing this
    generator stops the thread and waits for it (before the file may be closed)."""
    ready: queue.Queue[object] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for piece in pieces:
                if not put((piece, parse(piece.block) if piece.lines else None)):
                    return
            put(_DONE)
        except BaseException as e:  # handed over, raised in the reading thread
            put(e)

    worker = threading.Thread(target=work, name="log-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


@dataclass
class TailStats:
    lines: int = 0
    used: int = 0
    skipped: int = 0
    stopped: bool = False
    problems: list[str] = field(default_factory=list)


# The committer receives the checkpoints to write with the rollups gathered so far.
Commit = Callable[[list[Checkpoint]], None]


class FileTail:
    """One pass over one log path (see the module docstring)."""

    def __init__(self, *, source: str, path: Path, ingestor: Ingestor, commit: Commit,
                 checkpoints: dict[str, Checkpoint], block_size: int, flush_bytes: int):
        self.source = source
        self.path = path
        self.ingestor = ingestor
        self.commit = commit
        self.checkpoints = checkpoints
        self.block_size = block_size
        self.flush_bytes = flush_bytes
        self.stats = TailStats()

    # -- planning ----------------------------------------------------------------------
    def plan(self, *, backfill: bool) -> list[Target]:
        """The files to read, in order, and the live file's checkpoint to start from."""
        cp = self.checkpoints.get(LIVE)
        live = self._identity(self.path) if self.path.exists() else None
        targets: list[Target] = []
        siblings = rotated_siblings(self.path)
        if cp is not None and not self._is_live(cp, live):
            old = self._find(cp, siblings)
            if old is None:
                self.stats.problems.append(
                    f"{self.path}: the file read up to offset {cp.offset} was truncated or "
                    f"rotated away and is not among its siblings; lines written after that "
                    f"offset before the change may be missing")
                newer = siblings
            else:
                targets.append(Target(old, cp.offset, LIVE))
                newer = siblings[siblings.index(old) + 1:]
            targets += self._unread(newer)
            start_live = None if live is None else replace(live, offset=0)
        else:
            start_live = cp if cp is not None else (None if live is None
                                                    else replace(live, offset=0))
        if backfill:
            planned = {t.path for t in targets}
            targets = [t for t in self._unread(siblings) if t.path not in planned] + targets
        if start_live is not None:
            targets.append(Target(self.path, start_live.offset, LIVE))
        elif live is None:
            self.stats.problems.append(f"{self.path}: no such file (yet)")
        return targets

    def _identity(self, path: Path) -> Checkpoint:
        st = path.stat()
        return Checkpoint(self.source, LIVE, st.st_dev, st.st_ino, st.st_size, 0, "")

    def _is_live(self, cp: Checkpoint, live: Checkpoint | None) -> bool:
        if live is None or (live.device, live.inode) != (cp.device, cp.inode):
            return False
        if live.size < cp.offset:
            return False   # truncated (copytruncate, or by hand): start over
        return head_hash(self.path, cp.offset) == cp.head_hash

    def _find(self, cp: Checkpoint, siblings: list[Path]) -> Path | None:
        """The sibling holding the checkpointed content: its head must match (an inode
        alone may have been reused), the same inode preferred over a copy."""
        def holds(p: Path) -> bool:
            if p.suffix != ".gz" and p.stat().st_size < cp.offset:
                return False
            try:
                return head_hash(p, cp.offset) == cp.head_hash
            except (OSError, EOFError, gzip.BadGzipFile):
                return False

        same_inode = [p for p in siblings if p.suffix != ".gz"
                      and (p.stat().st_dev, p.stat().st_ino) == (cp.device, cp.inode)]
        others = [p for p in siblings if p not in same_inode]
        return next((p for p in same_inode + others if holds(p)), None)

    def _unread(self, siblings: list[Path]) -> list[Target]:
        out = []
        for p in siblings:
            try:
                h = head_hash(p)
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                self.stats.problems.append(f"{p}: unreadable ({e})")
                continue
            stream = f"rot:{h}"
            cp = self.checkpoints.get(stream)
            if cp is None:
                out.append(Target(p, 0, stream))
            elif cp.size != cp.offset or cp.offset == 0:
                out.append(Target(p, cp.offset, stream))
        return out

    # -- reading -----------------------------------------------------------------------
    def run(self, *, start_minute: int | None, end_minute: int | None) -> TailStats:
        targets = self.plan(backfill=start_minute is not None)
        for n, target in enumerate(targets):
            live_next = n + 1 < len(targets) and targets[n + 1].path == self.path
            finished = self._read(target, start_minute=start_minute, end_minute=end_minute,
                                  then_live=live_next)
            if not finished:
                break
        return self.stats

    def _read(self, target: Target, *, start_minute: int | None, end_minute: int | None,
              then_live: bool) -> bool:
        """Read one file to its end (True) or until the window's end (False)."""
        is_live = target.path == self.path
        name = str(target.path)
        offset = target.offset
        pending = 0
        try:
            f = open_log(target.path)
        except FileNotFoundError:
            return True
        if offset > 0:
            self._prime(target, f, offset)
        pieces = read_pieces(f, offset, block_size=self.block_size)
        # plain files are read ahead in another thread (the checkpoint reads their head
        # with pread, which moves no file position); a gzip stream is read in line
        parsed: Parsed = (prefetched(pieces, self.ingestor.parse) if target.plain
                          else ((p, None) for p in pieces))
        with f, closing(parsed):
            ident = self._file_identity(target, f)
            for piece, cols in parsed:
                if piece.too_long:
                    self.ingestor.rejects.add(name, "too-long", None, piece.too_long)
                if piece.lines:
                    res = self.ingestor.feed(piece.block, file=name, lines=piece.lines,
                                             start_minute=start_minute, end_minute=end_minute,
                                             parsed=cols)
                    self.stats.lines += res.lines
                    self.stats.used += res.used
                    self.stats.skipped += res.skipped
                    if res.stopped:
                        offset = piece.start + _line_offset(piece.block, res.lines)
                        self.commit([self._cp(target, ident, offset, f, done=False)])
                        self.stats.stopped = True
                        return False
                offset = piece.end
                pending += piece.end - piece.start
                if pending >= self.flush_bytes:
                    self.commit([self._cp(target, ident, offset, f, done=False)])
                    pending = 0
            cps = [self._cp(target, ident, offset, f, done=not is_live)]
            if not is_live and target.stream == LIVE:
                # the rotated-away file is finished: remember it as read
                cps.append(replace(cps[0], stream=f"rot:{head_hash(target.path)}",
                                   size=offset))
            if then_live and not is_live:
                # every rotated file is done: the new live file starts at 0
                live = self._identity(self.path)
                cps.append(replace(live, offset=0, head_hash=head_hash(self.path, 0)))
            self.commit(cps)
        return True

    def _prime(self, target: Target, f: BinaryIO, offset: int) -> None:
        """Re-read the lines just before ``offset`` for their times only: the lines
        after a checkpoint are judged by their neighbours on both sides (limits.py)."""
        start = max(0, offset - PRIME_BYTES)
        if target.plain:
            data = os.pread(f.fileno(), offset - start, start)
        else:
            f.seek(start)
            data = f.read(offset - start)
        if start > 0:
            data = data[data.find(b"\n") + 1:]     # a line cut in two is no line
        if data.endswith(b"\n"):
            data = data[:-1]
        if data:
            self.ingestor.prime(data)

    def _file_identity(self, target: Target, f: BinaryIO) -> Checkpoint:
        st = os.fstat(f.fileno()) if hasattr(f, "fileno") and target.plain \
            else target.path.stat()
        return Checkpoint(self.source, target.stream, st.st_dev, st.st_ino, st.st_size, 0, "")

    def _cp(self, target: Target, ident: Checkpoint, offset: int, f: BinaryIO, *,
            done: bool) -> Checkpoint:
        if target.plain:
            # pread moves no file position: the read-ahead thread may be reading f
            head = hashlib.sha256(os.pread(f.fileno(), min(offset, HEAD), 0)).hexdigest()
        else:
            pos = f.tell()
            f.seek(0)
            head = hashlib.sha256(f.read(min(offset, HEAD))).hexdigest()
            f.seek(pos)
        size = offset if done else (ident.size if target.stream == LIVE else 0)
        return replace(ident, stream=target.stream, offset=offset, size=size, head_hash=head)


def _line_offset(block: bytes, lines: int) -> int:
    """Bytes taken by the first ``lines`` lines of ``block`` (newlines included)."""
    pos = 0
    for _ in range(lines):
        pos = block.index(b"\n", pos) + 1
    return pos
