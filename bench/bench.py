"""Load a RUNNING shortener with wrk: preload links, then time redirect/miss/create/health.

Starts nothing itself. Example:

    python bench/bench.py --url http://127.0.0.1:8080 --connections 16,64 --duration 10s
    python bench/bench.py --json results.json --server-pid "$(cat /tmp/gunicorn.pid)"

Needs the `wrk` binary (Debian: `apt-get install wrk`); stdlib only otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

SCENARIOS = ("redirect", "miss", "create", "health")
EXPECTED_STATUS = {"redirect": (301, 302, 307, 308), "miss": (404,), "create": (201,), "health": (200,)}
RESULT_MARKER = "BENCH_RESULT "

# Shared by every scenario: per-thread seeding and a machine-readable summary from done().
LUA_PRELUDE = """
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end
function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"p50_us":%.0f,"p90_us":%.0f,'
    .. '"p99_us":%.0f,"max_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,'
    .. '"timeout":%.0f}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

LUA_REQUESTS = {
    "redirect": """
-- A browser's User-Agent, so that clicks are recorded as human ones (wrk sends none by default).
local browser = {["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
  .. "Chrome/120.0 Safari/537.36"}
local codes = {}
for line in io.lines(CODES_FILE) do codes[#codes + 1] = line end
function request()
  return wrk.format("GET", PREFIX .. "/" .. codes[math.random(#codes)], browser)
end
""",
    "miss": """
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
function request()
  local chars = {}
  for i = 1, 7 do
    local k = math.random(#alphabet)
    chars[i] = alphabet:sub(k, k)
  end
  return wrk.format("GET", PREFIX .. "/" .. table.concat(chars))
end
""",
    "create": """
local counter = 0
local headers = {["Content-Type"] = "application/json"}
function request()
  counter = counter + 1
  local body = string.format('{"url": "https://example.com/wrk/%d/%d/%d"}',
    thread_id or 0, counter, math.random(1000000000))
  return wrk.format("POST", PREFIX .. "/shorten", headers, body)
end
""",
    "health": """
function request()
  return wrk.format("GET", PREFIX .. "/health")
end
""",
}


@dataclass
class Result:
    """One wrk run: a scenario at a connection count."""

    scenario: str
    connections: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    probe_status: int | None = None
    probe_ok: bool = True
    notes: list[str] = field(default_factory=list)
    # CPU time per request of the server's process tree and of the local PostgreSQL, and the share
    # of the machine's time the hypervisor stole during the run: figures that stay comparable when
    # the machine (or its neighbours) changes, where req/s does not.
    server_cpu_us: float | None = None
    database_cpu_us: float | None = None
    steal_pct: float | None = None
    # Clicks the service counted as dropped during the run (its buffer full: the click flush did
    # not keep up), from /metrics; None when /metrics did not answer.
    clicks_dropped: int | None = None

    @property
    def error_cell(self) -> str:
        """The table's errors column: unexpected statuses and socket errors, 404s marked for miss."""
        parts = []
        if self.non_2xx_3xx:
            label = "404 (expected)" if self.scenario == "miss" else "non-2xx/3xx"
            parts.append(f"{self.non_2xx_3xx} {label}")
        parts += [f"{n} {kind}" for kind, n in self.socket_errors.items() if n]
        if not self.probe_ok:
            parts.append(f"probe got {self.probe_status}")
        return ", ".join(parts) or "0"


# ---------------------------------------------------------------- HTTP helpers (preload, probes)


class Client:
    """Keep-alive HTTP connections, one per thread, reopened after the server closes one."""

    def __init__(self, base: SplitResult, timeout: float = 10.0) -> None:
        self._base = base
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._base.scheme == "https" else http.client.HTTPConnection
            conn = cls(self._base.hostname or "127.0.0.1", self._base.port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request (retrying once on a dropped keep-alive connection); status and body."""
        payload = json.dumps(body).encode() if body is not None else None
        headers = {**({"Content-Type": "application/json"} if payload is not None else {}), **(headers or {})}
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, self._base.path.rstrip("/") + path, body=payload, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def create_one(client: Client, index: int) -> str:
    """Shorten one distinct URL; return its code."""
    status, data = client.request("POST", "/shorten", {"url": f"https://example.com/bench/{index}"})
    if status != 201:
        raise RuntimeError(f"POST /shorten returned {status}: {data[:200]!r}")
    return json.loads(data)["short_code"]


def preload(client: Client, count: int, workers: int) -> list[str]:
    """Create `count` links concurrently and return their codes."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(pool.map(lambda i: create_one(client, i), range(count)))
    elapsed = time.monotonic() - started
    log(f"preloaded {len(codes)} links in {elapsed:.1f}s ({len(codes) / max(elapsed, 1e-9):.0f}/s)")
    return codes


def probe(client: Client, scenario: str, code: str) -> int:
    """One request of the scenario's kind, to check the status wrk cannot check cheaply."""
    if scenario == "redirect":
        return client.request("GET", f"/{code}")[0]
    if scenario == "miss":
        return client.request("GET", "/zZ9zZ9q")[0]
    if scenario == "create":
        return client.request("POST", "/shorten", {"url": "https://example.com/bench/probe"})[0]
    return client.request("GET", "/health")[0]


# ---------------------------------------------------------------- wrk


def write_scripts(workdir: Path, codes: Sequence[str], prefix: str) -> dict[str, Path]:
    """Write the codes file and one Lua script per scenario; return the script paths."""
    codes_file = workdir / "codes.txt"
    codes_file.write_text("\n".join(codes) + "\n")
    header = f"CODES_FILE = {json.dumps(str(codes_file))}\nPREFIX = {json.dumps(prefix)}\n"
    scripts = {}
    for scenario, body in LUA_REQUESTS.items():
        path = workdir / f"{scenario}.lua"
        path.write_text(header + LUA_PRELUDE + body)
        scripts[scenario] = path
    return scripts


def run_wrk(wrk: str, url: str, script: Path, connections: int, args: argparse.Namespace) -> str:
    """Run wrk once and return its stdout."""
    command = [
        wrk,
        f"--threads={min(args.threads, connections)}",
        f"--connections={connections}",
        f"--duration={args.duration}",
        f"--timeout={args.timeout}",
        "--latency",
        f"--script={script}",
        url,
    ]
    log("$ " + " ".join(command))
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return completed.stdout


def parse_wrk(output: str, scenario: str, connections: int) -> Result:
    """Build a Result from the JSON line our done() hook prints (wrk's own text is the fallback)."""
    line = next((ln for ln in output.splitlines() if ln.startswith(RESULT_MARKER)), None)
    if line is None:
        raise RuntimeError(f"no {RESULT_MARKER.strip()} line in wrk output:\n{output}")
    raw = json.loads(line[len(RESULT_MARKER) :])
    duration_s = raw["duration_us"] / 1e6
    return Result(
        scenario=scenario,
        connections=connections,
        requests=raw["requests"],
        duration_s=round(duration_s, 3),
        rps=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        p50_ms=round(raw["p50_us"] / 1000, 2),
        p90_ms=round(raw["p90_us"] / 1000, 2),
        p99_ms=round(raw["p99_us"] / 1000, 2),
        max_ms=round(raw["max_us"] / 1000, 2),
        non_2xx_3xx=_non_2xx_3xx(output, raw["status"]),
        socket_errors={kind: raw[kind] for kind in ("connect", "read", "write", "timeout")},
    )


def _non_2xx_3xx(output: str, from_lua: int) -> int:
    match = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    return int(match.group(1)) if match else from_lua


def run_scenario(
    scenario: str, scripts: dict[str, Path], client: Client, codes: Sequence[str], args: argparse.Namespace
) -> list[Result]:
    """Probe once, then run wrk at each connection count."""
    results = []
    for connections in args.connections:
        status = probe(client, scenario, codes[0])
        dropped = clicks_dropped(client, args.metrics_token)
        before = cpu_sample(args.server_pid)
        output = run_wrk(args.wrk, args.url, scripts[scenario], connections, args)
        after = cpu_sample(args.server_pid)
        result = parse_wrk(output, scenario, connections)
        add_cpu_figures(result, before, after)
        result.probe_status = status
        result.probe_ok = status in EXPECTED_STATUS[scenario]
        results.append(result)
        time.sleep(args.pause)  # a flush still running when wrk stopped may drop too
        dropped_after = clicks_dropped(client, args.metrics_token)
        if dropped is not None and dropped_after is not None:
            result.clicks_dropped = dropped_after - dropped
        log(
            f"  {scenario} c={connections}: {result.rps:.0f} req/s, p99 {result.p99_ms} ms, "
            f"errors {result.error_cell}, clicks dropped {figure(result.clicks_dropped)}"
        )
    return results


def clicks_dropped(client: Client, token: str | None) -> int | None:
    """The service's count of dropped clicks (`shortener_clicks_dropped_total`), all processes;
    None without a metrics token or when /metrics does not answer."""
    if not token:
        return None
    try:
        status, body = client.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    except OSError:
        return None
    if status != 200:
        return None
    lines = body.decode().splitlines()
    return int(
        sum(float(line.split()[-1]) for line in lines if line.startswith("shortener_clicks_dropped_total"))
    )


# ---------------------------------------------------------------- CPU time of the server and the database

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class CpuSample:
    """Cumulative CPU seconds of the server tree and of PostgreSQL, and the machine's /proc/stat
    steal and total ticks, at one instant."""

    server: float
    database: float
    steal_ticks: int
    total_ticks: int


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by `pids` (those that still exist)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def postgres_pids() -> list[int]:
    """The local PostgreSQL server's processes (postmaster and backends)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


def cpu_sample(server_pid: int | None) -> CpuSample:
    """CPU use so far of the server tree rooted at `server_pid` (0 without one) and of PostgreSQL."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    server = cpu_seconds(process_tree(server_pid)) if server_pid else 0.0
    return CpuSample(server, cpu_seconds(postgres_pids()), ticks[7], sum(ticks))


def add_cpu_figures(result: Result, before: CpuSample, after: CpuSample) -> None:
    """Set `result`'s CPU per request and steal share from two samples around its run."""
    if result.requests:
        if after.server:
            result.server_cpu_us = round(1e6 * (after.server - before.server) / result.requests, 1)
        result.database_cpu_us = round(1e6 * (after.database - before.database) / result.requests, 1)
    elapsed = after.total_ticks - before.total_ticks
    if elapsed > 0:
        result.steal_pct = round(100 * (after.steal_ticks - before.steal_ticks) / elapsed, 1)


# ---------------------------------------------------------------- memory of the server tree


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def pss_kib(pid: int) -> int:
    """Proportional set size of one process, in KiB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def memory_report(root: int) -> dict[str, int]:
    """PSS per process of the tree rooted at `root` (the gunicorn master) and the total."""
    per_pid = {str(pid): pss_kib(pid) for pid in process_tree(root)}
    return {"total_kib": sum(per_pid.values()), "processes": len(per_pid), **per_pid}


# ---------------------------------------------------------------- output


def markdown_table(results: Iterable[Result]) -> str:
    """The results as a Markdown table."""
    rows = [
        "| scenario | connections | req/s | p50 ms | p99 ms | errors "
        "| server CPU µs/req | PG CPU µs/req | steal % | clicks dropped |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = (r.scenario, r.connections, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}")
        cells += (r.error_cell, figure(r.server_cpu_us), figure(r.database_cpu_us), figure(r.steal_pct))
        cells += (figure(r.clicks_dropped),)
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)


def figure(value: float | None) -> str:
    """A table cell for an optional figure."""
    return "" if value is None else f"{value:,.0f}"


def json_report(results: Sequence[Result], args: argparse.Namespace, memory: dict | None) -> str:
    """The results, the run parameters and the memory figures as JSON."""
    params = {k: v for k, v in vars(args).items() if k not in ("json",)}
    report = {"params": params, "results": [asdict(r) for r in results], "server_memory": memory}
    return json.dumps(report, indent=2)


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays a clean table or JSON document."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="base URL of the running service")
    parser.add_argument("--preload", type=int, default=10_000, help="links to create before the runs")
    parser.add_argument("--preload-workers", type=int, default=16, help="concurrent preload requests")
    parser.add_argument("--connections", type=_int_list, default=[16, 64], help="e.g. 16,64")
    parser.add_argument("--duration", default="10s", help="wrk duration per run, e.g. 10s, 1m")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--timeout", default="2s", help="wrk per-request timeout")
    parser.add_argument("--scenarios", type=_scenario_list, default=list(SCENARIOS), help="comma list")
    parser.add_argument("--warmup", default="2s", help="untimed redirect run first ('0' to skip)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds of rest between runs")
    parser.add_argument("--server-pid", type=int, help="gunicorn master pid: report PSS of its tree")
    parser.add_argument("--json", nargs="?", const="-", help="write JSON results to FILE ('-': stdout)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="path of the wrk binary")
    parser.add_argument(
        "--metrics-token",
        default=os.environ.get("METRICS_TOKEN"),
        help="the service's METRICS_TOKEN (default: $METRICS_TOKEN): reads the clicks dropped per run",
    )
    return parser.parse_args(argv)


def _int_list(raw: str) -> list[int]:
    return [int(part) for part in raw.split(",") if part.strip()]


def _scenario_list(raw: str) -> list[str]:
    names = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    return names


def warm_up(scripts: dict[str, Path], args: argparse.Namespace) -> None:
    """Fill connection pools and caches before the timed runs."""
    if args.warmup.strip() in ("", "0", "0s"):
        return
    warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
    run_wrk(args.wrk, args.url, scripts["redirect"], max(args.connections), warm)


def main(argv: Sequence[str] | None = None) -> int:
    """Preload, run every scenario at every connection count, print the table (and JSON)."""
    args = parse_args(argv)
    base = urlsplit(args.url)
    client = Client(base)
    codes = preload(client, max(args.preload, 1), args.preload_workers)
    with tempfile.TemporaryDirectory(prefix="shortener-bench-") as tmp:
        scripts = write_scripts(Path(tmp), codes, base.path.rstrip("/"))
        warm_up(scripts, args)
        results = [r for s in args.scenarios for r in run_scenario(s, scripts, client, codes, args)]
    memory = memory_report(args.server_pid) if args.server_pid else None
    if args.json:
        _write(args.json, json_report(results, args, memory))
    if args.json != "-":
        print(markdown_table(results))
        if memory:
            print(f"\nserver PSS: {memory['total_kib'] / 1024:.1f} MiB over {memory['processes']} processes")
    return 0 if all(r.probe_ok for r in results) else 1


def _write(target: str, text: str) -> None:
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text + "\n")
        log(f"wrote {target}")


if __name__ == "__main__":
    sys.exit(main())
