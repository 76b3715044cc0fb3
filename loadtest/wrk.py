"""Drive load with wrk and read back requests/s and latency percentiles.

wrk is written in C, so on a 2-core machine it costs far less than a Python load generator
and the service, not the client, is what gets measured. A Lua ``done`` hook prints the
figures as JSON; request scripts can rotate tokens and bodies from a prepared file.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPORT_LUA = r"""
local threads = {}
setup = function(thread) thread:set("id", #threads); table.insert(threads, thread) end
response = function(status, headers, body)
  local key = "status_" .. status
  _G[key] = (_G[key] or 0) + 1
  if on_response then on_response(status, headers, body) end
end
done = function(summary, latency, requests)
  local parts = {}
  for _, code in ipairs({200, 201, 304, 401, 403, 404, 409, 422, 429, 500, 503}) do
    local total = 0
    for _, thread in ipairs(threads) do total = total + (thread:get("status_" .. code) or 0) end
    if total > 0 then parts[#parts + 1] = string.format('"%d": %d', code, total) end
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "errors": %d, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, "codes": {%s}}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    table.concat(parts, ", ")))
end
"""


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    codes: dict

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def line(self, ceiling: "Result | None" = None) -> str:
        ratio = f"  {self.per_second / ceiling.per_second:6.1%} of static" if ceiling and ceiling.per_second else ""
        return (
            f"{self.name:28} {self.per_second:9,.0f} req/s  p50 {self.p50_ms:7.1f} ms  p95 {self.p95_ms:7.1f} ms  "
            f"p99 {self.p99_ms:7.1f} ms  codes {self.codes}{ratio}"
        )


def run(name: str, url: str, seconds: int = 10, connections: int = 256, threads: int = 1, script: str = "",
        until: Callable[[], bool] | None = None) -> Result:
    """One wrk run; ``script`` is Lua that may set ``request`` and ``on_response``.

    One thread by default: wrk loads each thread's script and runs its ``init`` only after
    starting the thread before, and starts its clock after the last, so the first thread
    sends requests that are counted against a duration that leaves them out. With a script
    that loads 200,000 people, two threads reported 3,785 and 5,266 req/s where one thread
    reported 2,367 and 2,445 (poll-shaped requests to the static route, runs alternated).
    One thread drives 256 connections at these rates with a few percent of a core.

    ``until``, checked twice a second, ends the run early (wrk stops on SIGINT and still
    reports): wrk itself always sleeps its whole duration, even when every thread is done.
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run scripts/ensure-wrk.sh (Debian: apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script + "\n" + REPORT_LUA)
    try:
        process = subprocess.Popen(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", lua.name, url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + seconds + 60
        while process.poll() is None and time.monotonic() < deadline:
            if until is not None and until():
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.5)
        try:
            stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
    finally:
        Path(lua.name).unlink(missing_ok=True)
    line = next((l for l in stdout.splitlines() if l.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no figures:\n{stdout}\n{stderr}")
    figures = json.loads(line.removeprefix("WRK_JSON "))
    return Result(name=name, **figures)


WARM_UP_SECONDS = 3


def warm_up(base_url: str, connections: int) -> None:
    """HAProxy opens its connections to the replicas on first use: not part of any figure."""
    run("warm-up", f"{base_url}/static-ceiling", WARM_UP_SECONDS, connections)


def lua_string_list(name: str, path: Path) -> str:
    """Lua that loads one string per line of ``path`` into the global table ``name``."""
    return f"""
{name} = {{}}
for line in io.lines("{path}") do {name}[#{name} + 1] = line end
"""
