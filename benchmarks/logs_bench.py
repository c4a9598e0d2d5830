"""Log ingestion speed and memory, beside GoAccess and ``wc -l`` on the same files.

    python benchmarks/logs_bench.py [--lines 2000000] [--keep DIR] [--baseline DIR]
        [--junk-every 20000]

Generates N nginx lines (combined + request time + upstream), N JSON lines (the
gateway's fields, millisecond timestamps) and N JSON lines "as they come" (``jsonrich``:
escapes, text beyond ASCII, percent-encoded paths, query strings, nulls and a dozen
fields the plan does not use) over an hour of traffic with ids in the paths,
then for each file runs, each in a subprocess of its own: ``wc -l``; GoAccess (Debian's,
``--log-format=COMBINED`` for nginx, a JSON log-format for JSON); and ``LogCollector``
ingesting the file end to end (parse, map, roll up, commit) into a fresh SQLite store.
Prints wall time, lines/s and peak RSS (``wait4``'s ru_maxrss) per run.  Targets:
>= 1,000,000 lines/s, >= 10x GoAccess, < 300 MB.

The collector reads and parses the next blocks in a second thread while it rolls up
and commits (two cores here), so its wall time is below its CPU time; GoAccess and
``wc -l`` run on one.  The store is created (``db upgrade``) by a process of its own
before the timed one, as
a worker finds it in production; the timed process's CPU time still includes Python's
start and the project's imports (SQLAlchemy, pydantic, numpy: most of a second), and
the note also gives lines/s by the CPU time of ``collect()`` alone (parse, map, roll
up, commit).  The header says whether the compiled scanner (collectors/logs/_scan.c)
is built: without it every line takes the strict Python parsers.  ``--baseline DIR`` runs the
collector of another source tree too, in the same run, for a before/after on the same
load (``git archive <rev> | tar -x -C DIR``).  A third file, the nginx one with a
malformed line every ``--junk-every`` lines, shows what bad lines cost.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PATHS = ["/api/auth/login", "/api/auth/session", "/api/files/{}", "/api/samples/{}",
         "/api/samples/{}/runs?page=2", "/api/ai/jobs/{}", "/api/audit/events", "/",
         "/static/app.{}.js", "/api/authors/{}"]
#: the candidate of each path's service in plans/nanopore.yaml (the rest: the monolith)
CANDIDATE = {"auth": "python-auth", "files": "python-files", "samples": "python-samples",
             "ai": "python-ai", "audit": "python-audit"}

UPGRADE = """
import sys
from store.db import make_engine, upgrade
upgrade(make_engine(sys.argv[1]))
"""

INGEST = """
import sys
from datetime import UTC, datetime
from slo.plan import LogSource, Sources
from slo.planfile import parse_plan
from store.db import make_engine
from collectors.logs import LogCollector
from pathlib import Path
plan = parse_plan(Path("plans/nanopore.yaml").read_text(), source="plan")
plan = plan.model_copy(update={"sources": Sources(logs=[LogSource(path=sys.argv[2], format=sys.argv[3])])})
engine = make_engine(sys.argv[1])
import time
t, c = time.perf_counter(), time.process_time()
r = LogCollector(plan=plan, engine=engine).collect(now=datetime.now(UTC))
print(f"{time.perf_counter() - t:.3f}", f"{time.process_time() - c:.3f}", r.items, r.rejected)
"""

JSON_GOACCESS = ('--log-format={"time":"%dT%t.%^","client":"%h","path":"%U","status":"%s","bytes":"%b",'
                 '"latency_ms":"%L","upstream":"%^","method":"%m"}')


def add_junk(src: Path, dst: Path, every: int) -> None:
    """``src`` with a malformed line after every ``every`` lines."""
    with src.open("rb") as f, dst.open("wb") as out:
        for i, line in enumerate(f, 1):
            out.write(line)
            if i % every == 0:
                out.write(b'10.0.0.1 - - [26/Nov/2026:12:00:00 +0000] "GET /x" junk\n')


def generate(path: Path, n: int, kind: str, seed: int = 1) -> None:
    rnd = random.Random(seed)
    # a pool of distinct requests, then lines drawn from it with advancing times: fast to
    # write, and still thousands of distinct paths as ids make them
    pool = []
    for i in range(5000):
        p = rnd.choice(PATHS).format(rnd.randint(1, 10**6))
        segment = p.split("/")[2] if p.startswith("/api/") else ""
        candidate = CANDIDATE.get(segment, "python-gateway")
        # 1 in 20 names an upstream the plan does not know: counted, not rolled up
        up = rnd.choice([candidate, "nanopore-monolith"] * 10 + ["somebody-else"])
        pool.append((p, up, rnd.choice((200,) * 20 + (404, 500, 503)),
                     rnd.randint(0, 20000), max(0.001, rnd.lognormvariate(3, 0.9))))
    step = 3600 / n
    with path.open("w", buffering=1 << 20) as f:
        buf = []
        for i in range(n):
            p, up, st, size, lat = pool[(i * 7919) % 5000]
            t = T0 + timedelta(seconds=i * step)
            if kind == "nginx":
                buf.append(f'10.{i % 250}.0.1 - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET {p} HTTP/1.1" '
                           f'{st} {size} "https://app.example.org/" "Mozilla/5.0 (X11; Linux)" '
                           f'{lat / 1000:.3f} "{up}"\n')
            elif kind == "json":
                buf.append(f'{{"time":"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z",'
                           f'"client":"10.{i % 250}.0.1","path":"{p}","status":{st},"bytes":{size},"latency_ms":{lat:.3f},'
                           f'"upstream":"{up}","method":"GET"}}\n')
            else:
                buf.append(_rich_json(i, t, p, up, st, size, lat))
            if len(buf) >= 100_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))


def _rich_json(i: int, t: datetime, path: str, up: str, status: int, size: int,
               lat: float) -> str:
    """A JSON line as gateways write them: escaped characters, text beyond ASCII,
    percent-encoded paths, query strings, nulls and many fields the plan does not use
    (the gateway's field names, so that a baseline tree reads it too)."""
    if i % 4 == 0:
        path += ("&" if "?" in path else "?") + "q=caf%C3%A9&sort=-created"
    if i % 5 == 0:
        path = path.replace("/api/files/", "/api/files/%E2%9C%93")
    if i % 7 == 0:
        path = path.replace("/", "\\/")                   # an escaped solidus
    upstream = "null" if i % 50 == 0 else f'"{up}"'
    size_field = "null" if i % 9 == 0 else str(size)
    return (f'{{"time":"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z","level":"info",'
            f'"msg":"request \\"done\\"","request_id":"r-{i:08x}","method":"GET",'
            f'"path":"{path}","status":{status},"bytes":{size_field},'
            f'"latency_ms":{lat:.3f},"upstream":{upstream},'
            f'"user":"{"Zoë Ørsted" if i % 3 == 0 else "ana"}","client":"10.{i % 250}.0.1",'
            f'"user_agent":"Mozilla/5.0 (X11; Linux x86_64) \\u00e9t\\u00e9",'
            f'"referer":null,"headers":{{"accept":"application/json","x-trace":[1,2,null]}},'
            f'"error":null}}\n')


@dataclass(frozen=True)
class Run:
    wall: float     # seconds
    cpu: float      # user + system seconds (fair on a busy machine)
    rss: float      # peak resident MB
    out: str


def timed(cmd: list[str], **kw: object) -> Run:
    """One command run as a child: its times, peak RSS and stdout.  Output goes to
    files, not pipes, so a chatty child never blocks on a full pipe."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, **kw)  # type: ignore[call-overload]
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{cmd[0]} failed: {err.read().decode().strip()[:500]}")
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                   out.read().decode())


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--generate":
        generate(Path(sys.argv[4]), int(sys.argv[3]), sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--keep", help="write the files here and keep them")
    ap.add_argument("--baseline", type=Path,
                    help="another source tree whose collector runs too (before/after)")
    ap.add_argument("--junk-every", type=int, default=20_000,
                    help="a malformed line after every N lines of the third file (0: none)")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="logs-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        trees = [("cutover LogCollector", ROOT)]
        if args.baseline:
            trees.append(("baseline LogCollector", args.baseline.resolve()))
        # "jsonrich": the JSON log as it comes (_rich_json), read as "json" beside the plain one
        inputs = ["nginx", "json", "jsonrich"] + (["nginx+junk"] if args.junk_every else [])
        for name in inputs:
            kind = name.split("+")[0]
            path = tmp / f"access.{name}.log"
            if not path.exists() and name.endswith("+junk"):
                add_junk(tmp / f"access.{kind}.log", path, args.junk_every)
            elif not path.exists():
                # in a child, so this process stays small while the others run
                timed([sys.executable, __file__, "--generate", kind, str(args.lines), str(path)])
            mb = path.stat().st_size / 2**20
            if kind == name:
                rows.append((name, mb, "wc -l", timed(["wc", "-l", str(path)]), ""))
            if shutil.which("goaccess") and kind == name and kind != "jsonrich":
                fmt = (["--log-format=COMBINED"] if kind == "nginx" else
                       [JSON_GOACCESS, "--date-format=%Y-%m-%d", "--time-format=%H:%M:%S"])
                run = timed(["goaccess", str(path), *fmt, "-o", str(tmp / "goaccess.json"),
                             "--no-progress"])
                rows.append((name, mb, "goaccess", run, ""))
            for tool, tree in trees:
                db = tmp / f"{kind}.db"
                for p in tmp.glob(f"{kind}.db*"):
                    p.unlink()
                timed([sys.executable, "-c", UPGRADE, f"sqlite:///{db}"], cwd=tree,
                      env={**os.environ, "PYTHONPATH": str(tree)})
                fmt = "json" if kind.startswith("json") else kind
                run = timed([sys.executable, "-c", INGEST, f"sqlite:///{db}", str(path), fmt],
                            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)})
                inner, inner_cpu, items, rejected = run.out.split()
                rate = args.lines / max(float(inner_cpu), 1e-9)
                wall_rate = args.lines / max(float(inner), 1e-9)
                rows.append((name, mb, tool, run,
                             f"{items} rolled up, {rejected} rejected; collect(): "
                             f"{float(inner):.2f} s wall, {float(inner_cpu):.2f} s CPU, "
                             f"{wall_rate:,.0f} lines/s wall, {rate:,.0f} lines/s CPU"))
        _print(rows, args.lines)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _print(rows: list[tuple[str, float, str, Run, str]], n: int) -> None:
    compiled = subprocess.run([sys.executable, "-c", "from collectors.logs.formats import "
                               "COMPILED; print(COMPILED)"], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    print(f"{n:,} lines per file; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs (lines/s by CPU time is the fairer figure on a busy box); "
          f"compiled scanner: {'yes' if compiled.strip() == 'True' else 'NO'}")
    print(f"{'input':10} {'MB':>5}  {'tool':21} {'wall s':>7} {'CPU s':>7} {'lines/s wall':>13} "
          f"{'lines/s CPU':>12} {'peak RSS MB':>12}  note")
    base: dict[str, tuple[float, float]] = {}
    for kind, mb, tool, run, note in rows:
        rate, cpu_rate = n / run.wall, n / max(run.cpu, 1e-9)
        if tool == "goaccess":
            base[kind] = (rate, cpu_rate)
        goaccess = base.get(kind.split("+")[0])
        if tool.endswith("LogCollector") and goaccess:
            note += (f"; {rate / goaccess[0]:.1f}x goaccess by wall, "
                     f"{cpu_rate / goaccess[1]:.1f}x by CPU")
        print(f"{kind:10} {mb:5.0f}  {tool:21} {run.wall:7.2f} {run.cpu:7.2f} {rate:13,.0f} "
              f"{cpu_rate:12,.0f} {run.rss:12.0f}  {note}")


if __name__ == "__main__":
    main()
