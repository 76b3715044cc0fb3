"""The sellout report: figures, verdicts against the targets, and PNG plots, from one run's raw data.

    python -m loadtest.report reports/sellout-<time> [--out docs/bench]

Reads what ``loadtest.sellout`` left in the work folder (run.json, out/requests-*.csv,
out/seats.csv, out/client-*.json, resources.csv) and writes report.md, summary.json and the
PNGs into the output folder. Latencies are the clients' (locust's) measurements, so they
include the front and any queueing on the shared machine, and also locust's own delays when
it runs short of CPU (its CPU share is in the resources table).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

TARGET_SEATMAP_P95_MS = 150
TARGET_SELLOUT_S = 300
TARGET_CPU_MS_PER_SEAT = 15
CONTENDERS_PER_SEAT = 13
SEATMAP = ("GET /api/seats", "GET /api/seats (reader)")
LATENCY_BIN_S = 5


class Requests:
    """Every request any locust process made: start time, name, milliseconds, status."""

    def __init__(self, folder: Path):
        starts, names, ms, statuses = [], [], [], []
        for path in sorted(folder.glob("requests-*.csv")):
            with open(path) as file:
                for row in csv.reader(file):
                    if len(row) != 5:
                        continue  # a line cut short by a killed process
                    try:
                        starts.append(float(row[0]))
                        ms.append(float(row[3]))
                        statuses.append(int(row[4]))
                    except ValueError:
                        continue
                    names.append(row[2] if row[2].startswith(row[1]) else f"{row[1]} {row[2]}")
        order = np.argsort(np.array(starts)) if starts else np.array([], dtype=int)
        self.t = np.array(starts)[order] if starts else np.array([])
        self.ms = np.array(ms)[order] if ms else np.array([])
        self.status = np.array(statuses)[order] if statuses else np.array([], dtype=int)
        names_array = np.array(names, dtype=object)[order] if names else np.array([], dtype=object)
        self.name = names_array

    def window(self, start: float, end: float) -> "Requests":
        part = Requests.__new__(Requests)
        mask = (self.t >= start) & (self.t < end)
        part.t, part.ms, part.status, part.name = self.t[mask], self.ms[mask], self.status[mask], self.name[mask]
        return part

    def of(self, *names: str) -> "Requests":
        part = Requests.__new__(Requests)
        mask = np.isin(self.name, list(names))
        part.t, part.ms, part.status, part.name = self.t[mask], self.ms[mask], self.status[mask], self.name[mask]
        return part

    def names(self) -> list[str]:
        counts = Counter(self.name.tolist())
        return [name for name, _ in counts.most_common()]

    def __len__(self) -> int:
        return len(self.t)


def pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def describe(part: Requests, seconds: float) -> dict:
    ok = part.status[(part.status > 0)]
    statuses = Counter(int(s) for s in part.status.tolist())
    return {
        "count": len(part),
        "rps": len(part) / seconds if seconds > 0 else 0.0,
        "p50_ms": pct(part.ms, 50),
        "p95_ms": pct(part.ms, 95),
        "p99_ms": pct(part.ms, 99),
        "max_ms": float(part.ms.max()) if len(part) else None,
        "no_answer": int((part.status == 0).sum()),
        "server_errors": int((ok >= 500).sum()),
        "statuses": dict(sorted(statuses.items())),
    }


def read_seats(path: Path) -> np.ndarray:
    if not path.exists():
        return np.zeros((0, 4))
    rows = []
    with open(path) as file:
        for row in csv.DictReader(file):
            try:
                rows.append((float(row["t"]), int(row["available"]), int(row["held"]), int(row["sold"])))
            except (TypeError, ValueError):
                continue
    return np.array(rows) if rows else np.zeros((0, 4))


def read_resources(path: Path) -> dict[str, np.ndarray]:
    columns: dict[str, list[float]] = defaultdict(list)
    if path.exists():
        with open(path) as file:
            for row in csv.DictReader(file):
                for key, value in row.items():
                    columns[key].append(float(value) if value not in ("", None) else np.nan)
    return {key: np.array(values) for key, values in columns.items()}


def merged_clients(folder: Path) -> tuple[Counter, list[tuple[float, int]]]:
    counters: Counter = Counter()
    hot: list[tuple[float, int]] = []
    for path in sorted(folder.glob("client-*.json")):
        data = json.loads(path.read_text())
        counters.update(data.get("counters", {}))
        hot.extend(tuple(x) for x in data.get("hot_history", []))
    return counters, sorted(hot)


AREAS = (  # where a replica's CPU goes, by the module of the function on top of the stack
    ("ray/serve/", "Ray Serve (replica, request wrapping, its metrics)"),
    ("ray/", "Ray core (actor calls, object refs, metrics export)"),
    ("starlette/", "Starlette / FastAPI / uvicorn / anyio (the HTTP framework)"),
    ("fastapi/", "Starlette / FastAPI / uvicorn / anyio (the HTTP framework)"),
    ("uvicorn/", "Starlette / FastAPI / uvicorn / anyio (the HTTP framework)"),
    ("anyio/", "Starlette / FastAPI / uvicorn / anyio (the HTTP framework)"),
    ("httptools", "Starlette / FastAPI / uvicorn / anyio (the HTTP framework)"),
    ("pydantic", "pydantic (validation, serialisation)"),
    ("asyncio/", "asyncio (event loop, streams)"),
    ("aiomysql/", "aiomysql / PyMySQL (the store's driver)"),
    ("pymysql/", "aiomysql / PyMySQL (the store's driver)"),
    ("argon2/", "argon2id (logins)"),
    ("httpx/", "httpx / httpcore (the provider's callback to ourselves)"),
    ("httpcore/", "httpx / httpcore (the provider's callback to ourselves)"),
    ("api/", "Encore's own code (api/, actors/, domain/, persistence/, payments/)"),
    ("actors/", "Encore's own code (api/, actors/, domain/, persistence/, payments/)"),
    ("domain/", "Encore's own code (api/, actors/, domain/, persistence/, payments/)"),
    ("persistence/", "Encore's own code (api/, actors/, domain/, persistence/, payments/)"),
    ("payments/", "Encore's own code (api/, actors/, domain/, persistence/, payments/)"),
)


PROFILE_TITLES = {"replica": "ingress replicas", "block": "seat blocks", "queue": "queue actor"}


def read_profiles(work: Path, tag: str) -> dict | None:
    """py-spy raw stacks of one kind of process (GIL holders only): self time by area, and the heaviest functions."""
    areas: Counter = Counter()
    functions: Counter = Counter()
    total = 0
    files = sorted(work.glob(f"py-spy-{tag}-*.txt"))
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            count = int(count)
            leaf = stack.split(";")[-1]
            location = leaf[leaf.rfind("(") + 1:].rstrip(")")
            area = next((label for prefix, label in AREAS if location.startswith(prefix) or f"/{prefix}" in location),
                        "Python standard library and other" if location else "native / unknown")
            areas[area] += count
            functions[leaf] += count
            total += count
    if not total:
        return None
    return {"processes": len(files), "samples": total,
            "areas": [(a, c / total) for a, c in areas.most_common()],
            "functions": [(f, c / total) for f, c in functions.most_common(12)]}


def _by_process_rows(path: Path):
    for name in ("by-process.jsonl", "cpu-by-process.jsonl"):
        if (path / name).exists():
            for line in (path / name).read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                t = row.pop("t")
                yield t, row.get("cpu", row), row.get("rss", {})
            return


def cpu_by_process(work: Path, begin: float, end: float) -> list[tuple[str, float]]:
    """Cores used by each kind of service process over [begin, end]."""
    totals: Counter = Counter()
    for t, cpu, _ in _by_process_rows(work):
        if begin <= t <= end:
            totals.update(cpu)
    seconds = max(1e-9, end - begin)
    return [(kind, cpu / seconds) for kind, cpu in totals.most_common() if cpu / seconds >= 0.005]


def rss_by_process(work: Path, begin: float, end: float) -> list[tuple[str, int, int]]:
    """RSS of each kind of service process at the start and at the end of [begin, end]."""
    first = last = None
    for t, _, rss in _by_process_rows(work):
        if rss and begin <= t <= end:
            first = first or rss
            last = rss
    if not first:
        return []
    kinds = sorted(set(first) | set(last), key=lambda k: -last.get(k, 0))
    return [(k, first.get(k, 0), last.get(k, 0)) for k in kinds]


def fmt_ms(value: float | None) -> str:
    return "–" if value is None else (f"{value:,.0f}" if value >= 10 else f"{value:.1f}")


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def build(work: Path, out_dir: Path) -> dict:
    """Compute, plot and write; returns the summary (also written as summary.json)."""
    work, out_dir = Path(work), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = json.loads((work / "run.json").read_text())
    seats_total = run["seats"]
    requests = Requests(work / "out")
    phases = {p["name"]: p for p in run["phases"]}
    seats = read_seats(work / "out" / "seats.csv")
    resources = read_resources(work / "resources.csv")
    clients, hot_history = merged_clients(work / "out")
    audit = run.get("audit", {})

    # -- the ceilings
    ceilings = {}
    for name in ("ceiling-static", "ceiling-seatmap", "ceiling-static-after"):
        phase = phases.get(name)
        if not phase:
            continue
        part = requests.window(phase["start"], phase["end"])
        if len(part) < 2:
            continue
        # the steady part: the first and last second (spawning, stopping) left out
        steady = part.window(part.t[0] + 1, part.t[-1] - 1) if part.t[-1] - part.t[0] > 4 else part
        seconds = max(1e-9, steady.t[-1] - steady.t[0]) if len(steady) > 1 else 1.0
        ceilings[name] = describe(steady, seconds)

    # -- the sellout window: from the first request to the moment every seat reads S
    sale = phases.get("sellout")
    summary: dict = {"run": {k: run[k] for k in ("started_at", "seats", "members", "service_settings", "machine") if k in run}}
    if sale is None:
        raise SystemExit("no sellout phase in run.json")
    sale_requests = requests.window(sale["start"], sale["end"])
    begin = float(sale_requests.t[0]) if len(sale_requests) else sale["start"]
    sold_rows = seats[seats[:, 3] >= seats_total] if len(seats) else seats
    sold_out_at = float(sold_rows[0, 0]) if len(sold_rows) else None
    end = sold_out_at if sold_out_at is not None else (float(sale_requests.t[-1]) if len(sale_requests) else sale["end"])
    during = sale_requests.window(begin, end)
    seconds = max(1e-9, end - begin)
    holds = during.of("POST /api/holds")
    first_hold = float(holds.t[0]) if len(holds) else None
    sold_final = int(seats[-1, 3]) if len(seats) else audit.get("map_sold", 0)

    endpoints = {name: describe(during.of(name), seconds) for name in during.names()}
    seatmap = describe(during.of(*SEATMAP), seconds)
    everything = describe(during, seconds)
    static_rps = ceilings.get("ceiling-static", {}).get("rps")


    hold_statuses = Counter(int(s) for s in holds.status.tolist())
    figures = {
        "sold_out": sold_out_at is not None,
        "time_to_sellout_s": (sold_out_at - begin) if sold_out_at else None,
        "time_from_first_hold_s": (sold_out_at - first_hold) if sold_out_at and first_hold else None,
        "window_s": seconds,
        "seats_sold": sold_final,
        "hold_attempts": clients.get("hold_attempts", len(holds)),
        "hold_requests_logged": len(holds),
        "holds_won": clients.get("holds_won", hold_statuses.get(201, 0)),
        "holds_lost": clients.get("holds_lost", hold_statuses.get(409, 0)),
        "hold_seats_won": clients.get("hold_seats_won", 0),
        "holds_other": {k: v for k, v in clients.items() if k.startswith("holds_other")},
        "holds_abandoned": clients.get("holds_abandoned", 0),
        "contenders_per_seat": clients.get("hold_attempts", len(holds)) / seats_total,
        "attempts_per_seat_won": clients.get("hold_attempts", 0) / max(1, clients.get("hold_seats_won", 0)),
        "payments_started": clients.get("payments_started", 0),
        "checkout_succeeded": clients.get("checkout_succeeded", 0),
        "checkout_failed": clients.get("checkout_failed", 0),
        "bookings_confirmed_seen": clients.get("bookings_confirmed", 0),
        "logins": clients.get("logins", 0),
        "persons": clients.get("persons", 0),
        "queue_joins": clients.get("queue_joins", 0),
        "store_bookings": audit.get("bookings_by_status", {}),
        "store_payments": audit.get("payments_by_status", {}),
        "expiries": audit.get("bookings_by_status", {}).get("expired", 0),
        "requests_per_s": everything["rps"],
        "seatmap": seatmap,
        "static_ceiling_rps": static_rps,
        "throughput_vs_static_ceiling": everything["rps"] / static_rps if static_rps else None,
    }
    integrity = {
        "double_sales": audit.get("double_sales"),
        "store_agrees_with_map_sold": audit.get("map_agrees_sold"),
        "store_agrees_with_map_held": audit.get("map_agrees_held"),
        "claims_agree_with_confirmed_bookings": audit.get("claims_disagree_with_confirmed") == 0,
        "claims_of_released_bookings": audit.get("claims_of_released_bookings"),
        "client_confirmed_seen": audit.get("client_confirmed_seen"),
        "client_confirmed_missing_in_store": audit.get("client_confirmed_missing_in_store"),
        "client_confirmed_wrong_seats": audit.get("client_confirmed_wrong_seats"),
    }
    passed_integrity = (
        integrity["double_sales"] == 0 and integrity["store_agrees_with_map_sold"] is True
        and integrity["claims_agree_with_confirmed_bookings"] and integrity["client_confirmed_missing_in_store"] == 0
        and integrity["client_confirmed_wrong_seats"] == 0 and integrity["claims_of_released_bookings"] == 0
    )
    needed_attempts = CONTENDERS_PER_SEAT * seats_total
    targets = [
        ("seat map p95 < 150 ms over the whole sellout", f"{fmt_ms(seatmap['p95_ms'])} ms",
         seatmap["p95_ms"] is not None and seatmap["p95_ms"] < TARGET_SEATMAP_P95_MS),
        (f"all {seats_total:,} seats sold", f"{sold_final:,}", sold_final == seats_total),
        ("zero double sales", str(integrity["double_sales"]), integrity["double_sales"] == 0),
        ("sold out in under 5 minutes",
         f"{figures['time_to_sellout_s']:.0f} s" if figures["time_to_sellout_s"] else "not sold out",
         bool(figures["time_to_sellout_s"]) and figures["time_to_sellout_s"] < TARGET_SELLOUT_S),
        (f"at least {needed_attempts:,} hold attempts (13 per seat)", f"{figures['hold_attempts']:,}",
         figures["hold_attempts"] >= needed_attempts),
        ("every confirmation a client saw is confirmed in the store",
         f"{integrity['client_confirmed_seen']:,} seen, {integrity['client_confirmed_missing_in_store']} missing",
         integrity["client_confirmed_missing_in_store"] == 0),
        ("store agrees with the seat map and every confirmed booking",
         "yes" if passed_integrity else "no", passed_integrity),
    ]

    # -- resources
    peak = run.get("peak_memory", {})
    cpu = run.get("cpu_seconds", {})
    cores = {}
    if "t" in resources and len(resources["t"]):
        mask = (resources["t"] >= begin) & (resources["t"] <= end)
        for key in ("service_cpu", "mariadb_cpu", "locust_cpu"):
            cores[key] = float(np.nansum(resources[key][mask])) / seconds if mask.any() else None
        cores["machine_percent"] = float(np.nanmean(resources["machine_cpu"][mask])) if mask.any() else None
        others = (cores["machine_percent"] or 0) / 100 * (run["machine"]["cpus"] or 2) - sum(
            v or 0 for k, v in cores.items() if k != "machine_percent")
        cores["everything_else"] = max(0.0, others)

    if cores.get("service_cpu"):
        figures["service_cpu_ms_per_seat"] = cores["service_cpu"] * seconds * 1000 / max(1, sold_final)
        figures["service_cpu_ms_per_request"] = cores["service_cpu"] * 1000 / max(1e-9, everything["rps"])
        targets.append((f"at most {TARGET_CPU_MS_PER_SEAT} ms of service CPU per seat sold",
                        f"{figures['service_cpu_ms_per_seat']:.1f} ms ({figures['service_cpu_ms_per_request']:.2f} ms per request)",
                        figures["service_cpu_ms_per_seat"] <= TARGET_CPU_MS_PER_SEAT))

    idle = phases.get("idle")
    summary.update({
        "cpu_at_rest": cpu_by_process(work, idle["start"] + 1, idle["end"]) if idle else [],
        "cpu_by_process": cpu_by_process(work, begin, end),
        "rss_by_process": rss_by_process(work, begin, end),
        "profiles": {tag: read_profiles(work, tag) for tag in PROFILE_TITLES},
        "figures": figures, "integrity": integrity, "passed_integrity": passed_integrity,
        "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in targets],
        "endpoints": endpoints, "ceilings": ceilings, "peak_memory": peak, "cpu_seconds": cpu,
        "cores_during_sellout": cores, "hot_set_final": hot_history[-1][1] if hot_history else None,
        "client_counters": dict(clients),
    })

    plots = plot(out_dir, during, begin, seats, resources, run, hot_history)
    text = render(summary, run, plots, begin)
    (out_dir / "report.md").write_text(text)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    summary["text"] = console(summary)
    return summary


# ---- the plots

def plot(out_dir: Path, during: Requests, begin: float, seats: np.ndarray, resources: dict, run: dict, hot) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    names = [n for n in during.names() if len(during.of(n)) >= 20]
    if not len(during):
        return written
    span = during.t[-1] - begin

    reads = [n for n in names if n.startswith("GET")]
    writes = [n for n in names if not n.startswith("GET")]
    colours = plt.get_cmap("tab10")

    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    edges = np.arange(0, span + 1, 1.0)
    for ax, group, title in ((axes[0], reads, "reads"), (axes[1], writes, "writes")):
        for index, name in enumerate(group):
            part = during.of(name)
            counts, _ = np.histogram(part.t - begin, bins=edges)
            smooth = np.convolve(counts, np.ones(5) / 5, mode="same")
            ax.plot(edges[:-1], smooth, label=name, linewidth=1.2, color=colours(index % 10))
        ax.set_ylabel("requests/s (5 s average)")
        ax.set_title(f"Throughput per endpoint during the sellout: {title}")
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    axes[1].set_xlabel("seconds since the sale began")
    fig.tight_layout()
    fig.savefig(out_dir / "throughput.png", dpi=110)
    plt.close(fig)
    written.append("throughput.png")

    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    bins = np.arange(0, span + LATENCY_BIN_S, LATENCY_BIN_S)
    for ax, group, title in ((axes[0], reads, "reads"), (axes[1], writes, "writes")):
        for index, name in enumerate(group):
            part = during.of(name)
            rel = part.t - begin
            xs, ys = [], []
            for low in bins[:-1]:
                inside = part.ms[(rel >= low) & (rel < low + LATENCY_BIN_S)]
                if len(inside) >= 5:
                    xs.append(low + LATENCY_BIN_S / 2)
                    ys.append(np.percentile(inside, 95))
            if xs:
                ax.plot(xs, ys, label=name, linewidth=1.2, marker=".", markersize=3, color=colours(index % 10))
        if ax is axes[0]:
            ax.axhline(TARGET_SEATMAP_P95_MS, color="red", linestyle="--", linewidth=1, label="seat map target 150 ms")
        ax.set_yscale("log")
        ax.set_ylabel(f"p95, ms ({LATENCY_BIN_S} s bins)")
        ax.set_title(f"p95 latency per endpoint during the sellout: {title}")
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3, which="both")
    axes[1].set_xlabel("seconds since the sale began")
    fig.tight_layout()
    fig.savefig(out_dir / "latency-p95.png", dpi=110)
    plt.close(fig)
    written.append("latency-p95.png")

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    if len(seats):
        mask = seats[:, 0] >= begin - 1
        top.plot(seats[mask, 0] - begin, seats[mask, 3], label="sold (S)", color="tab:green")
        top.plot(seats[mask, 0] - begin, seats[mask, 2], label="held (H)", color="tab:orange")
    top.axhline(run["seats"], color="grey", linewidth=0.8, linestyle=":")
    top.set_ylabel("seats")
    top.set_title("Seats sold and held over time (the service's seat map, sampled twice a second)")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    holds = during.of("POST /api/holds")
    rel = holds.t - begin
    for code, label, color in ((201, "holds won", "tab:green"), (409, "holds lost (seat taken)", "tab:red")):
        chosen = np.sort(rel[holds.status == code])
        bottom.plot(chosen, np.arange(1, len(chosen) + 1), label=label, color=color)
    if hot:
        twin = bottom.twinx()
        hx = np.array([h[0] for h in hot]) - begin
        twin.plot(hx, [h[1] for h in hot], color="tab:blue", linewidth=0.6, alpha=0.5, label="hot set size H")
        twin.set_ylabel("hot set size H (seats)", color="tab:blue")
        twin.set_yscale("log")
    bottom.set_ylabel("hold attempts (cumulative)")
    bottom.set_xlabel("seconds since the sale began")
    bottom.legend(fontsize=8, loc="upper left")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "seats-sold.png", dpi=110)
    plt.close(fig)
    written.append("seats-sold.png")

    if "t" in resources and len(resources["t"]):
        t0 = resources["t"][0]
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
        x = resources["t"] - t0
        top.plot(x, resources["service_rss"] / 2**20, label="service RSS (sum over its processes)")
        pss = resources["service_pss"]
        ok = ~np.isnan(pss)
        top.plot(x[ok], pss[ok] / 2**20, label="service PSS (shared pages counted once)")
        top.plot(x, resources["mariadb_rss"] / 2**20, label="mariadbd RSS")
        top.set_ylabel("MiB")
        top.set_title("Memory and CPU of the whole run (shaded: the ceilings in grey, the sellout in green)")
        top.legend(fontsize=8)
        top.grid(alpha=0.3)
        dt = resources["dt"] if "dt" in resources else np.ones_like(x)
        window = np.ones(5)  # 5 s sums: per-second deltas of 30 processes sampled one after another jitter
        for key, label in (("service_cpu", "service"), ("mariadb_cpu", "MariaDB"), ("locust_cpu", "locust")):
            cores = np.convolve(np.nan_to_num(resources[key]), window, "same") / np.convolve(dt, window, "same")
            bottom.plot(x, cores, label=label, linewidth=1)
        bottom.plot(x, resources["machine_cpu"] / 100 * (run["machine"]["cpus"] or 2), label="whole machine", color="black",
                    linewidth=0.8, linestyle=":")
        bottom.set_ylabel("cores busy (5 s average)")
        bottom.set_xlabel("seconds since the service was healthy")
        bottom.legend(fontsize=8)
        bottom.grid(alpha=0.3)
        for axis in (top, bottom):
            axis.axvspan(begin - t0, during.t[-1] - t0, color="tab:green", alpha=0.08)
            for phase in run["phases"]:
                if phase["name"].startswith("ceiling"):
                    axis.axvspan(phase["start"] - t0, phase["end"] - t0, color="grey", alpha=0.1)
        fig.tight_layout()
        fig.savefig(out_dir / "resources.png", dpi=110)
        plt.close(fig)
        written.append("resources.png")
    return written


# ---- the texts

def render(summary: dict, run: dict, plots: list[str], begin: float) -> str:
    f, integrity, ceilings = summary["figures"], summary["integrity"], summary["ceilings"]
    static = ceilings.get("ceiling-static", {})
    settings = run["service_settings"]
    args = run.get("args", {})
    lines = [
        "# Sellout benchmark",
        "",
        f"Run of {run['started_at']} on {run['machine']['cpus']} cores / {run['machine']['memory_gib']} GiB "
        f"(load average before: {', '.join(f'{x:.1f}' for x in run['machine']['load_before'])}). "
        f"Service, MariaDB and locust share the machine. Command: `python -m loadtest.sellout "
        + " ".join(_cli_args(args)) + "`.",
        "",
        "## Verdict",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for row in summary["targets"]:
        lines.append(f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else '**no**'} |")
    other_holds = ", ".join(f"{k.removeprefix('holds_other_')}: {v:,}" for k, v in f["holds_other"].items())
    sold_text = f"{f['time_to_sellout_s']:.0f} s" if f["time_to_sellout_s"] else f"not sold out within {f['window_s']:.0f} s"
    lines += [
        "",
        "## The sale",
        "",
        "| figure | value |",
        "|---|---|",
        f"| time to sell out (first request → every seat reads S) | {sold_text} |",
        f"| … from the first hold attempt | {f['time_from_first_hold_s']:.0f} s |" if f["time_from_first_hold_s"] else "| … from the first hold attempt | – |",
        f"| seats sold | {f['seats_sold']:,} of {run['seats']:,} |",
        f"| hold attempts / won / lost (seat taken) | {f['hold_attempts']:,} / {f['holds_won']:,} / {f['holds_lost']:,} |",
        f"| other hold answers | {other_holds or 'none'} |",
        f"| hold attempts per seat of the hall (contenders per seat) | {f['contenders_per_seat']:.1f} |",
        f"| hold attempts per seat won | {f['attempts_per_seat_won']:.1f} |",
        f"| won holds abandoned (left to expire) | {f['holds_abandoned']:,} |",
        f"| payments started / succeeded / declined (client view) | {f['payments_started']:,} / {f['checkout_succeeded']:,} / {f['checkout_failed']:,} |",
        f"| bookings in the store by status | {_dict(f['store_bookings'])} |",
        f"| payments in the store by status | {_dict(f['store_payments'])} |",
        f"| expiries (bookings expired) | {f['expiries']:,} |",
        f"| persons (buyers) / of them logged in during the sale / queue joins | {f['persons']:,} / {f['logins']:,} / {f['queue_joins']:,} |",
        f"| requests/s, all endpoints, over the sale | {f['requests_per_s']:,.0f} |",
        "",
        "## Integrity (MariaDB queried directly after the run)",
        "",
        "| check | result |",
        "|---|---|",
        f"| seats sold twice (confirmed bookings per seat > 1) | {integrity['double_sales']} |",
        f"| seat map `S` = seats of confirmed bookings in the store | {_yes(integrity['store_agrees_with_map_sold'])} |",
        f"| seat map `H` = seats claimed by held bookings in the store | {_yes(integrity['store_agrees_with_map_held'])} |",
        f"| every confirmed seat's claim row names its booking | {_yes(integrity['claims_agree_with_confirmed_bookings'])} |",
        f"| claims left by released bookings | {integrity['claims_of_released_bookings']} |",
        f"| confirmations seen by clients / missing in the store / with other seats | {integrity['client_confirmed_seen']:,} / "
        f"{integrity['client_confirmed_missing_in_store']} / {integrity['client_confirmed_wrong_seats']} |",
        "",
        "## Endpoints during the sale",
        "",
        "Client-side latency (locust), from the first request to the sellout. The static probe is one",
        "user asking `/static-ceiling` ten times a second during the sale: the front's own latency",
        "under the same load; the ratio column divides each p50 by it.",
        "",
        "| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | p50 ÷ probe p50 | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    probe_p50 = summary["endpoints"].get("GET /static-ceiling (probe)", {}).get("p50_ms")
    rows = list(summary["endpoints"].items()) + [("seat map, buyers + readers", f["seatmap"])]
    for name, e in rows:
        ratio = f"{e['p50_ms'] / probe_p50:.1f}×" if probe_p50 and e["p50_ms"] else "–"
        answers = ", ".join(f"{k}: {v:,}" for k, v in e["statuses"].items())
        lines.append(f"| {name} | {e['count']:,} | {e['rps']:,.1f} | {fmt_ms(e['p50_ms'])} | {fmt_ms(e['p95_ms'])} | "
                     f"{fmt_ms(e['p99_ms'])} | {fmt_ms(e['max_ms'])} | {ratio} | {answers} |")
    lines += [
        "",
        "## Ceilings, measured in the same run through the same front",
        "",
        f"Each alone for {args.get('ceiling_seconds', '?')} s with {args.get('ceiling_users', '?')} locust users "
        "and no think time (the machine's 2 cores shared by locust and the service).",
        "",
        "| route | req/s | p50 ms | p95 ms | p99 ms | ÷ static req/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {"ceiling-static": "`/static-ceiling` before the sale", "ceiling-seatmap": "`/api/seats`, full 200 body, before the sale",
              "ceiling-static-after": "`/static-ceiling` after the sale (sold out, quiet)"}
    for name, c in ceilings.items():
        ratio = f"{c['rps'] / static['rps']:.2f}" if static.get("rps") else "–"
        lines.append(f"| {labels.get(name, name)} | {c['rps']:,.0f} | {fmt_ms(c['p50_ms'])} | {fmt_ms(c['p95_ms'])} | {fmt_ms(c['p99_ms'])} | {ratio} |")
    if f["throughput_vs_static_ceiling"]:
        lines += ["", f"The sale ran at {f['requests_per_s']:,.0f} requests/s, {f['throughput_vs_static_ceiling']:.0%} of the "
                  f"static ceiling's {f['static_ceiling_rps']:,.0f}/s."]
    peak, cores, cpu = summary["peak_memory"], summary["cores_during_sellout"], summary["cpu_seconds"]
    lines += [
        "",
        "## Resources",
        "",
        "| figure | value |",
        "|---|---|",
        f"| peak memory of the service (sum of RSS over its {peak.get('service_processes', '?')} processes: Ray, actors, Serve, HAProxy) | {mib(peak.get('service_rss', 0))} |",
        f"| … the same as PSS (shared pages counted once) | {mib(peak.get('service_pss', 0))} |",
        f"| peak RSS of mariadbd (shared with other databases on the server) | {mib(peak.get('mariadb_rss', 0))} |",
        f"| peak of service + MariaDB (RSS / PSS+RSS) | {mib(peak.get('total_rss', 0))} / {mib(peak.get('total_pss', 0))} |",
    ]
    if cores:
        lines.append(f"| cores busy during the sale: service / MariaDB / locust / anything else | "
                     f"{cores.get('service_cpu') or 0:.2f} / {cores.get('mariadb_cpu') or 0:.2f} / {cores.get('locust_cpu') or 0:.2f} / "
                     f"{cores.get('everything_else') or 0:.2f} (machine {cores.get('machine_percent') or 0:.0f}% busy) |")
    if cpu:
        lines.append(f"| CPU seconds over the whole run: service / MariaDB / locust | "
                     f"{cpu.get('service', 0):,.0f} / {cpu.get('mariadb', 0):,.0f} / {cpu.get('locust', 0):,.0f} |")
    if summary.get("cpu_by_process"):
        rest = dict(summary.get("cpu_at_rest") or [])
        during_total = sum(c for _, c in summary["cpu_by_process"])
        if rest:
            lines += ["", "Cores used by each kind of service process during the sale, and at rest (no load at all, "
                      "measured before the ceilings), sampled every second:", "",
                      "| process | cores during the sale | cores at rest |", "|---|---:|---:|"]
            lines += [f"| `{kind}` | {c:.2f} | {rest.get(kind, 0):.2f} |" for kind, c in summary["cpu_by_process"]]
            lines.append(f"| all service processes | {during_total:.2f} | {sum(rest.values()):.2f} |")
        else:
            lines += ["", "Cores used by each kind of service process during the sale, sampled every second:", "",
                      "| process | cores during the sale |", "|---|---:|"]
            lines += [f"| `{kind}` | {c:.2f} |" for kind, c in summary["cpu_by_process"]]
            lines.append(f"| all service processes | {during_total:.2f} |")
    if summary.get("rss_by_process"):
        lines += ["", "Memory (RSS) of each kind of service process when the sale began and when it ended:", "",
                  "| process | RSS at the start | RSS at the end |", "|---|---:|---:|"]
        lines += [f"| `{kind}` | {mib(a)} | {mib(b)} |" for kind, a, b in summary["rss_by_process"] if max(a, b) >= 20 * 2**20]
    for tag, profile in (summary.get("profiles") or {}).items():
        if not profile:
            continue
        lines += ["", f"Where the Python thread of the {PROFILE_TITLES[tag]} spends its CPU (py-spy, GIL holders only, "
                  f"{profile['samples']:,} samples over {profile['processes']} process(es), self time by the module on top of the stack):", "",
                  "| area | share |", "|---|---:|"]
        lines += [f"| {area} | {share:.0%} |" for area, share in profile["areas"]]
        lines += ["", "| heaviest functions (self time) | share |", "|---|---:|"]
        lines += [f"| `{name}` | {share:.1%} |" for name, share in profile["functions"]]
    lines += [
        "",
        "## Plots",
        "",
    ]
    captions = {"throughput.png": "Requests per second per endpoint", "latency-p95.png": "p95 latency per endpoint (log scale)",
                "seats-sold.png": "Seats sold and held; cumulative holds won and lost; the hot set size the buyers steered",
                "resources.png": "Memory and CPU of the service, MariaDB and locust"}
    for name in plots:
        lines += [f"![{captions.get(name, name)}]({name})", ""]
    lines += [
        "## How the load is made",
        "",
        f"- Service: `encore serve` on MariaDB, {settings.get('sections')} sections × 20 rows × 50 seats, "
        f"{settings.get('ingress_replicas')} ingress replica(s), holds last {settings.get('hold_seconds')} s, "
        f"queue admits {settings.get('queue_admit_per_second')}/s up to {settings.get('queue_active_max')} active, "
        f"providers decline {float(settings.get('payment_failure_rate', 0)):.0%} of payments.",
        f"- Locust ({'master + ' + str(args.get('workers')) + ' workers' if args.get('workers') not in (None, '0') else 'one process'}): "
        f"{args.get('users')} users started at {args.get('spawn_rate')}/s; buyers : readers = "
        f"{args.get('buyer_weight')} : {args.get('reader_weight')}, plus one static probe.",
        f"- {run['members']:,} members were inserted straight into MariaDB with one precomputed argon2id hash. A buyer "
        "(one browser) fetches the venue once and serves one person after another: each joins the queue and polls it with "
        "`poll_after_ms`, polls the seat map with `If-None-Match`, picks 1–4 adjacent seats among the best that look free, "
        "holds with an `Idempotency-Key`, pays (mock provider; a declined person tries again), checks the booking, and "
        "leaves once it reads `confirmed` (its id goes to a file the audit reads). A browser's first person logs in "
        "(argon2id); the later ones bring a session opened before the sale (signed with the service's key), "
        + ("unless every person logs in (`--login-every-person`)." if args.get("login_every_person") == "True"
           else "so the sale does not measure password hashing."),
        f"- Contention: buyers aim at the first H free seats of one shared ranking (front rows, centre first); H is steered so "
        f"that hold attempts per seat won stay near {args.get('contention')} (the brief's 13 contenders per seat). "
        f"{float(args.get('abandon', 0)):.0%} of won holds are abandoned and expire.",
        "- Latencies are measured by locust, so they include locust's own delays when it is short of CPU.",
        "",
    ]
    return "\n".join(lines)


def _cli_args(args: dict) -> list[str]:
    shown = []
    defaults = {"sections": "15", "workers": "0", "work_dir": "None", "report_dir": "None", "keep_db": "False",
                "service_env": "[]", "members": "0", "replicas": "1", "login_every_person": "False",
                "users": "300", "spawn_rate": "30", "time_limit": "480"}
    for key in ("sections", "users", "spawn_rate", "time_limit", "workers", "replicas", "report_dir", "login_every_person"):
        value = args.get(key)
        if value is not None and value != defaults.get(key):
            if value in ("True", "False"):
                if value == "True":
                    shown.append(f"--{key.replace('_', '-')}")
            else:
                shown.append(f"--{key.replace('_', '-')} {value}")
    return shown


def _dict(d: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(d.items())) or "–"


def _yes(value) -> str:
    return "yes" if value is True else ("**no**" if value is False else "–")


def console(summary: dict) -> str:
    f = summary["figures"]
    lines = ["", "==== sellout ===="]
    for row in summary["targets"]:
        lines.append(f"  [{'ok' if row['met'] else 'MISS'}] {row['target']}: {row['measured']}")
    lines.append(f"  holds attempted/won/lost: {f['hold_attempts']:,}/{f['holds_won']:,}/{f['holds_lost']:,}; "
                 f"payments ok/declined: {f['checkout_succeeded']:,}/{f['checkout_failed']:,}; expiries: {f['expiries']:,}")
    lines.append(f"  requests/s over the sale: {f['requests_per_s']:,.0f}"
                 + (f" ({f['throughput_vs_static_ceiling']:.0%} of the static ceiling {f['static_ceiling_rps']:,.0f}/s)"
                    if f["throughput_vs_static_ceiling"] else ""))
    for name, e in summary["endpoints"].items():
        lines.append(f"  {name:38} {e['rps']:8.1f}/s  p50 {fmt_ms(e['p50_ms']):>6}  p95 {fmt_ms(e['p95_ms']):>6}  p99 {fmt_ms(e['p99_ms']):>6} ms")
    peak = summary["peak_memory"]
    lines.append(f"  peak memory: service {mib(peak.get('service_rss', 0))} RSS / {mib(peak.get('service_pss', 0))} PSS, "
                 f"mariadbd {mib(peak.get('mariadb_rss', 0))}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="the work folder of a sellout run")
    parser.add_argument("--out", type=Path, default=None, help="where report.md and the PNGs go (default: the work folder)")
    args = parser.parse_args()
    summary = build(args.work, args.out or args.work)
    print(summary["text"])


if __name__ == "__main__":
    main()
