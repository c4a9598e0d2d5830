"""The demo's stand-ins for what the shipped plan's probes look at on a cluster: small HTTP
servers on loopback in place of the monolith and the Python services, sharing one session
store, two directory trees in place of the old and the new file storage, and SQLite
databases in place of the monolith's, the samples service's and the audit service's.

They answer only what the probes ask (``/health``, the auth login and ``/me``, the samples
lists, the AI extraction), so the probes run for real: the Python samples service's
search is case-sensitive where the monolith's is not, so it misses a sample
(``samples-search`` fails); one sample's status did not reach the samples service's
database (``samples-consistent`` fails, naming the key); and, once
:meth:`StandIns.corrupt_upload` is called (the demo does it three hours before its
start, in week 3), a new upload reaches the Python files service's store with one byte
changed (``files-intact`` fails, naming the file).  Everything else agrees.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["CORRUPTED_UPLOAD", "SAMPLES", "StandIns", "search"]

#: the samples, the same in both variants' databases
SAMPLES: tuple[dict[str, Any], ...] = (
    {"id": 1, "sample_name": "ecoli-k12-run01", "status": "sequencing", "priority": "high"},
    {"id": 2, "sample_name": "yeast-s288c-run02", "status": "complete", "priority": "normal"},
    {"id": 3, "sample_name": "EColi-o157-run03", "status": "sequencing", "priority": "high"},
    {"id": 4, "sample_name": "arabidopsis-run04", "status": "queued", "priority": "low"},
    {"id": 5, "sample_name": "ecoli-bl21-run05", "status": "complete", "priority": "normal"},
)
#: the uploads of the file store (path -> content), the same on both trees
FILES: Mapping[str, bytes] = {
    "runs/fc-7/sample-01.pod5": b"POD5" + bytes(range(256)) * 64,
    "runs/fc-7/sample-02.pod5": b"POD5" + bytes(reversed(range(256))) * 48,
    "reports/qc-2026-11.pdf": b"%PDF-1.7 quality control summary\n" * 200,
    "forms/submission-0042.pdf": b"%PDF-1.7 sample submission form\n" * 90,
}
#: the upload that reaches the new file store corrupted: one byte changed in transfer
CORRUPTED_UPLOAD = "runs/fc-8/sample-03.pod5"
CORRUPTED_CONTENT = b"POD5" + bytes(range(7, 256)) * 40
LOGIN_BODY = {"username": "demo", "password": "demo"}
#: the plan's database variables -> the stand-in database each names
DATABASES: Mapping[str, str] = {"MONOLITH_DATABASE_URL": "monolith",
                                "SAMPLES_DATABASE_URL": "python-samples",
                                "AUDIT_DATABASE_URL": "python-audit"}
#: the one row that drifted: its new status never reached the samples service's database
DRIFTED = {"id": 4, "status": "queued"}
#: rows of each table (a few hundred: enough for more than one key range to be walked)
DB_ROWS = 300


def search(variant: str, query: str, name: str) -> bool:
    """The monolith searches without regard to case (SQL ``ILIKE``); the Python service
    was written with ``LIKE``: a search for ``ecoli`` misses ``EColi-o157-run03`` there."""
    return query.lower() in name.lower() if variant == "monolith" else query in name


@dataclass
class _Shared:
    sessions: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(variant: str, shared: _Shared) -> type[BaseHTTPRequestHandler]:
    rows = [dict(r) for r in SAMPLES]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes: without this, Nagle's algorithm holds the
        # second until the client's delayed ACK (40 ms a request on Linux)
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:   # the demo's terminal stays readable
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/health":
                self._json(200, {"status": "ok", "variant": variant})
            elif url.path == "/api/auth/me":
                self._me()
            elif url.path == "/api/samples":
                self._json(200, _samples(variant, rows, query))
            elif url.path == "/api/samples/stats":
                self._json(200, _stats(rows))
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            if url.path == "/api/auth/login":
                self._login(body)
            elif url.path == "/api/ai/extract":
                self._json(200, {"fields": {"sample_name": "ecoli-k12-run01",
                                            "flow_cell_type": "R10.4.1", "priority": "high"},
                                 "request_id": secrets.token_hex(4),
                                 "processing_time_ms": 40 if variant == "monolith" else 12,
                                 "model_version": variant})
            else:
                self._json(404, {"error": "not found"})

        def _login(self, body: bytes) -> None:
            try:
                ok = json.loads(body or b"null") == LOGIN_BODY
            except json.JSONDecodeError:
                ok = False
            if not ok:
                self._json(401, {"error": "bad credentials"})
                return
            token = secrets.token_hex(16)
            with shared.lock:
                shared.sessions.add(token)
            self._json(200, {"ok": True}, cookie=f"session={token}; Path=/; HttpOnly")

        def _me(self) -> None:
            cookies = dict(part.strip().split("=", 1) for part in
                           (self.headers.get("Cookie") or "").split(";") if "=" in part)
            with shared.lock:
                known = cookies.get("session") in shared.sessions
            self._json(200 if known else 401, {"user": "demo"} if known else {"error": "no"})

        def _json(self, status: int, doc: Any, *, cookie: str | None = None) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if cookie is not None:
                self.send_header("Set-Cookie", cookie)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _samples(variant: str, rows: list[dict[str, Any]], query: Mapping[str, str]
             ) -> dict[str, Any]:
    found = [r for r in rows
             if search(variant, query.get("search", ""), r["sample_name"])
             and all(r[k] == query[k] for k in ("status", "priority") if k in query)]
    limit = int(query.get("limit", "50"))
    return {"items": found[:limit], "total": len(found), "request_id": secrets.token_hex(4)}


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    return {"total": len(rows), "by_status": by_status, "request_id": secrets.token_hex(4)}


@dataclass
class StandIns:
    """The stand-ins, running: each variant's loopback base URL by name, and the two file
    trees.  :meth:`close` stops the servers."""

    root: Path
    urls: dict[str, str] = field(default_factory=dict)
    servers: list[ThreadingHTTPServer] = field(default_factory=list)

    VARIANTS = ("monolith", "python-auth", "python-samples", "python-ai", "python-gateway")

    @classmethod
    def start(cls, root: Path) -> StandIns:
        out = cls(root=root)
        shared = _Shared()
        try:
            for variant in cls.VARIANTS:
                httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(variant, shared))
                httpd.daemon_threads = True
                out.servers.append(httpd)
                threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                 name=f"stand-in {variant}", daemon=True).start()
                out.urls[variant] = f"http://127.0.0.1:{httpd.server_address[1]}"
            out._write_files()
            out._write_databases()
        except BaseException:
            out.close()
            raise
        return out

    @property
    def old_files(self) -> Path:
        return self.root / "files" / "monolith"

    @property
    def new_files(self) -> Path:
        return self.root / "files" / "python-files"

    @property
    def login_body(self) -> Path:
        return self.root / "session-login.json"

    def _write_files(self) -> None:
        for tree in (self.old_files, self.new_files):
            for rel, content in FILES.items():
                path = tree / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
        self.login_body.write_text(json.dumps(LOGIN_BODY), encoding="utf-8")

    def corrupt_upload(self) -> bool:
        """A new upload arrives: whole in the monolith's tree, with one byte changed in the
        Python files service's.  True the first time, False once it is there."""
        old, new = self.old_files / CORRUPTED_UPLOAD, self.new_files / CORRUPTED_UPLOAD
        if new.exists():
            return False
        for path in (old, new):
            path.parent.mkdir(parents=True, exist_ok=True)
        old.write_bytes(CORRUPTED_CONTENT)
        damaged = bytearray(CORRUPTED_CONTENT)
        damaged[len(damaged) // 2] ^= 0x20
        new.write_bytes(bytes(damaged))
        return True

    def db_url_file(self, variable: str) -> Path:
        """The file holding the URL of the stand-in database that ``variable`` names."""
        return self.root / "db" / f"{DATABASES[variable]}.url"

    def _write_databases(self) -> None:
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        samples = [(i, f"sample-{i:04d}", 1 + i % 7, ("queued", "sequencing", "complete")[i % 3],
                    ("low", "normal", "high")[i % 3], "nanopore-r10", f"2026-11-{1 + i % 28:02d}")
                   for i in range(1, DB_ROWS + 1)]
        audit = [(i, "ana@example.org", "update", "sample", i % 50, f"2026-11-{1 + i % 28:02d}")
                 for i in range(1, DB_ROWS + 1)]
        for name in DATABASES.values():
            path = self.root / "db" / f"{name}.db"
            path.unlink(missing_ok=True)
            with sqlite3.connect(path) as db:
                if name in ("monolith", "python-samples"):
                    db.execute("CREATE TABLE samples (id INTEGER PRIMARY KEY, sample_name TEXT, "
                               "project_id INTEGER, status TEXT, priority TEXT, "
                               "flow_cell_type TEXT, updated_at TEXT)")
                    rows = samples if name == "monolith" else [
                        (*r[:3], DRIFTED["status"], *r[4:]) if r[0] == DRIFTED["id"] else r
                        for r in samples]
                    db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                if name in ("monolith", "python-audit"):
                    db.execute("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, actor TEXT, "
                               "action TEXT, entity TEXT, entity_id INTEGER, at TEXT)")
                    db.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?)", audit)
            db.close()
            (self.root / "db" / f"{name}.url").write_text(f"sqlite:///{path}\n", encoding="utf-8")

    def close(self) -> None:
        for httpd in self.servers:
            httpd.shutdown()
            httpd.server_close()
        self.servers.clear()
