"""Parsing: milliseconds per page (per file for CSV and JSON) and peak memory, per layout.

Each layout's file is made in memory from the golden fixtures of tests/fixtures/ (fixed
seeds: the same bytes every run) and checked against what it must parse to, so that a
slow fallback or a wrong reading cannot pass for a fast one. Then, per layout:

- **parse**: `parsers.registry.parse_file(name, data)` in this process, after a warm-up
  (imports done, registry built); the median wall time of repeated runs (at least 3, more
  while the time budget per layout lasts, at most 50), and the median CPU time (user +
  system), which other load on a shared machine inflates less.
- **pdftotext**: poppler's `pdftotext -layout FILE -` on the same PDF, as a subprocess,
  timed the same way, in the same run: the baseline (process start included, as a service
  calling it would pay; its CPU time is the child's, from RUSAGE_CHILDREN).
- **peak RSS**: a fresh interpreter per file (`subprocess`, `python -c`) that imports the
  parsers (pandas, pypdfium2), reads the file, records its RSS high-water mark (`VmHWM` of
  /proc/self/status), parses, and records it again: the peak of the whole process, and what
  was in use before parsing. A second fresh interpreter measures the peak of
  Python allocations during the parse alone with tracemalloc (pdfium's C heap is not in it).

Targets (issue 3): per PDF, parse at most 3x pdftotext per document; peak RSS under 300 MB on
the 50-page invoice; the 100,000-row CSV parsed in under 2 s. No network; every child has a
time limit, so the run stops by itself (2 to 5 minutes on 2 CPUs).

    .venv/bin/python benchmarks/parse.py [--json] [--budget 2] [--only lago_50_pages,csv_100k]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fixtures import make_documents as docs  # noqa: E402
from fixtures import usage_exports as exports  # noqa: E402
from parsers.base import Document  # noqa: E402
from parsers.registry import parse_file  # noqa: E402
from parsers.source import FileSource  # noqa: E402

TARGET_RATIO = 3.0  # parse / pdftotext per PDF document, at most
TARGET_PEAK_MB = 300.0  # peak RSS on the 50-page invoice, under
TARGET_CSV_S = 2.0  # the 100,000-row CSV, under
BIG_PAGES = 50
BIG_ROWS = 1_660  # 23 rows on page 1, 34 on each next: 50 pages with the totals
MAX_REPEAT = 50
USAGES = ("input", "output", "cached")
CHILD_TIMEOUT_S = 120.0
MIB = 1024 * 1024

# A fresh interpreter: the parsers' imports, the file, the parse; VmHWM before and after.
# Not ru_maxrss: Linux carries the parent's RSS at fork into the child's ru_maxrss across
# exec (so RUSAGE_CHILDREN, too, reports at least the parent's size); VmHWM is the high-water
# mark of the child's own address space, which exec starts afresh.
RSS_CHILD = """
import json, sys
from parsers.registry import parse_file, registered_parsers
registered_parsers()  # every format module imported, as in the service's parse child
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
data = open(sys.argv[1], "rb").read()
before = hwm()
parse_file(sys.argv[2], data)
print(json.dumps({"before_kib": before, "peak_kib": hwm()}))
"""
TRACEMALLOC_CHILD = """
import json, sys, tracemalloc
from parsers.registry import parse_file, registered_parsers
registered_parsers()
data = open(sys.argv[1], "rb").read()
tracemalloc.start()
parse_file(sys.argv[2], data)
print(json.dumps({"peak_bytes": tracemalloc.get_traced_memory()[1]}))
"""


# --- the files


@dataclass(frozen=True)
class Case:
    """One layout: its file, its size, and a check of what it parses to."""

    key: str
    layout: str
    name: str
    data: bytes
    pages: int | None  # PDFs; None for CSV and JSON
    size: str  # what the file holds, for the table
    check: Callable[[list[Document]], str | None]  # None when right, else what is wrong


def spec_check(spec: docs.Spec) -> Callable[[list[Document]], str | None]:
    """The parse JSON of CONTRACT.md must be the fixture's expected one (fx fields aside)."""
    want = docs.expected(spec)

    def check(documents: list[Document]) -> str | None:
        got = docs.without_fx({"documents": [d.to_json() for d in documents]})
        return None if got == want else "the parse JSON differs from the fixture's"

    return check


def fixture_check(fixture: exports.UsageFixture) -> Callable[[list[Document]], str | None]:
    def check(documents: list[Document]) -> str | None:
        got = docs.without_fx({"documents": [d.to_json() for d in documents]})
        return None if got == fixture.expected else "the parse JSON differs from the fixture's"

    return check


def big_lago_spec(rows: int = BIG_ROWS) -> docs.Spec:
    """A Lago usage invoice of `rows` fee rows: 13 models x input/output/cached, on demand and
    in batch, drawn again and again with fresh token counts (seed 50)."""
    rng = random.Random(50)
    made: list[docs.Row] = []
    while len(made) < rows:
        for charge, factor in (("Tokens", Decimal(1)), ("Batch tokens", Decimal("0.5"))):
            for model_id, (input_price, output_price) in docs.EUR_PER_TOKEN.items():
                prices = (Decimal(input_price), Decimal(output_price), Decimal(input_price) / 10)
                counts = (
                    rng.randrange(10**5, 9 * 10**8),
                    rng.randrange(10**4, 10**8),
                    rng.randrange(1, 10**8),
                )
                for usage, count, price in zip(USAGES, counts, prices, strict=True):
                    printed = (price * factor).quantize(Decimal("1e-10"), ROUND_HALF_UP)
                    made.append(
                        docs.Row(charge, Decimal(count), printed.normalize(), model_id, usage)
                    )
    return replace(
        docs.SPECS["lago_en_eur_3_pages"],
        rows=tuple(made[:rows]),
        number="MIS-4F1D-202611-050",
        pages=BIG_PAGES,
        file="lago_50_pages.pdf",
    )


CSV_MODELS = (
    "mistral-large-2411",
    "codestral-2508",
    "mistral-small-2506",
    "mistral-medium-2508",
    "magistral-medium-2509",
    "ministral-8b-2410",
    "pixtral-large-2411",
    "open-mistral-nemo",
)


def usage_csv(rows: int, french: bool = False) -> tuple[bytes, Decimal]:
    """A daily usage export of October 2026 with `rows` rows over 8 models and 5 workspaces
    (seed = rows), and the total of its cost column. English: comma-separated, decimal
    point, plain costs (`12.3456`). French: semicolons, decimal comma, `12,3456 €` cells."""
    rng = random.Random(rows)
    if french:
        head = "Jour;Espace de travail;Modèle;Tokens d'entrée;Tokens de sortie;Tokens en cache"
        lines = [head + ";Coût (€)"]
    else:
        lines = ["Date,Workspace,Model,Input tokens,Output tokens,Cached tokens,Cost (EUR)"]
    total = Decimal(0)
    for i in range(rows):
        day = 1 + i * 31 // rows
        model = CSV_MODELS[i % len(CSV_MODELS)]
        tokens = (rng.randrange(10**6), rng.randrange(10**5), rng.randrange(10**4))
        cost = Decimal(rng.randrange(10**6)).scaleb(-4)
        total += cost
        if french:
            cells = (f"{day:02d}/10/2026", f"ws{i % 5}", model, *map(str, tokens))
            lines.append(";".join(cells) + f";{str(cost).replace('.', ',')} €")
        else:
            cells = (f"2026-10-{day:02d}", f"ws{i % 5}", model, *map(str, tokens))
            lines.append(",".join(cells) + f",{cost}")
    return exports.csv_bytes(lines), total


def csv_check(total: Decimal) -> Callable[[list[Document]], str | None]:
    def check(documents: list[Document]) -> str | None:
        document = documents[0]
        if document.total != total or document.warnings:
            return f"total {document.total} (want {total}), warnings {document.warnings}"
        # 8 models: one money line and three token lines each
        return None if len(document.lines) == 4 * len(CSV_MODELS) else "wrong line count"

    return check


def rows_text(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"


def cases() -> list[Case]:
    made = []
    for key, layout, spec_key in (
        ("lago_en", "Lago EN, 1 page", "lago_en_eur"),
        ("lago_fr", "Lago FR, 1 page", "lago_fr_eur"),
        ("lago_3_pages", "Lago EN, 3 pages", "lago_en_eur_3_pages"),
        ("stripe", "Stripe, 1 page", "stripe_le_chat_team"),
    ):
        spec = docs.SPECS[spec_key]
        made.append(
            Case(
                key,
                layout,
                spec.file,
                docs.render(spec),
                spec.pages,
                rows_text(len(spec.rows)),
                spec_check(spec),
            )
        )
    big = big_lago_spec()
    made.insert(
        3,
        Case(
            "lago_50_pages",
            "Lago EN, 50 pages",
            big.file,
            docs.render(big),
            BIG_PAGES,
            rows_text(len(big.rows)),
            spec_check(big),
        ),
    )
    for key, layout, rows, french in (
        ("csv_1k", "CSV, 1,000 rows", 1_000, False),
        ("csv_100k", "CSV, 100,000 rows", 100_000, False),
        ("csv_100k_fr", "CSV, 100,000 rows, FR `12,34 €`", 100_000, True),
    ):
        data, total = usage_csv(rows, french)
        made.append(
            Case(
                key,
                layout,
                f"{key}.csv",
                data,
                None,
                f"{len(data) / MIB:.1f} MiB",
                csv_check(total),
            )
        )
    console = exports.json_console_october()
    made.append(
        Case(
            "console_json",
            "console JSON",
            console.name,
            console.data,
            None,
            f"{len(console.data) / 1024:.1f} KiB",
            fixture_check(console),
        )
    )
    return made


# --- measuring


@dataclass(frozen=True)
class Timing:
    """Medians over `runs` runs, in seconds: wall time, and CPU time (user + system) of this
    process or, with `children`, of the subprocesses it waited for."""

    wall: float
    cpu: float
    runs: int


def timed(run: Callable[[], Any], budget: float, children: bool = False) -> Timing:
    """run() at least 3 times, more while `budget` seconds last, at most MAX_REPEAT."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF

    def cpu() -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    walls: list[float] = []
    cpus: list[float] = []
    started = time.perf_counter()
    while len(walls) < 3 or (time.perf_counter() - started < budget and len(walls) < MAX_REPEAT):
        wall, spent = time.perf_counter(), cpu()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu() - spent)
    return Timing(statistics.median(walls), statistics.median(cpus), len(walls))


def pdftotext(path: Path) -> None:
    subprocess.run(
        ["pdftotext", "-layout", str(path), "-"],
        check=True,
        capture_output=True,
        timeout=CHILD_TIMEOUT_S,
    )


def child(code: str, path: Path, name: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter on the file; its one JSON line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name}: the measuring child failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@dataclass
class Result:
    key: str
    layout: str
    size: str
    pages: int | None
    parse_ms: float
    parse_cpu_ms: float
    parse_runs: int
    pdftotext_ms: float | None
    pdftotext_cpu_ms: float | None
    pdftotext_runs: int | None
    rss_before_mb: float
    rss_peak_mb: float
    tracemalloc_peak_mb: float

    @property
    def per_page_ms(self) -> float:
        return self.parse_ms / (self.pages or 1)

    @property
    def ratio(self) -> float | None:
        return None if self.pdftotext_ms is None else self.parse_ms / self.pdftotext_ms

    @property
    def cpu_ratio(self) -> float | None:
        if not self.pdftotext_cpu_ms:
            return None
        return self.parse_cpu_ms / self.pdftotext_cpu_ms


def measure(case: Case, folder: Path, budget: float) -> Result:
    path = folder / case.name
    path.write_bytes(case.data)
    if case.pages is not None and len(FileSource(case.name, case.data).page_texts) != case.pages:
        raise RuntimeError(f"{case.layout}: not {case.pages} pages (the fixtures' layout moved?)")
    problem = case.check(parse_file(case.name, case.data))
    if problem is not None:
        raise RuntimeError(f"{case.layout}: {problem}")
    parse = timed(lambda: parse_file(case.name, case.data), budget)
    baseline = timed(lambda: pdftotext(path), budget, children=True) if case.pages else None
    rss = child(RSS_CHILD, path, case.name)
    traced = child(TRACEMALLOC_CHILD, path, case.name)
    return Result(
        key=case.key,
        layout=case.layout,
        size=case.size,
        pages=case.pages,
        parse_ms=parse.wall * 1000,
        parse_cpu_ms=parse.cpu * 1000,
        parse_runs=parse.runs,
        pdftotext_ms=None if baseline is None else baseline.wall * 1000,
        pdftotext_cpu_ms=None if baseline is None else baseline.cpu * 1000,
        pdftotext_runs=None if baseline is None else baseline.runs,
        rss_before_mb=rss["before_kib"] * 1024 / 1e6,
        rss_peak_mb=rss["peak_kib"] * 1024 / 1e6,
        tracemalloc_peak_mb=traced["peak_bytes"] / 1e6,
    )


# --- report


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    poppler = subprocess.run(["pdftotext", "-v"], capture_output=True, text=True, check=False)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "pdftotext": (poppler.stderr.splitlines() or ["?"])[0].removeprefix("pdftotext "),
        "pypdfium2": version("pypdfium2"),
        "pandas": version("pandas"),
    }


def verdict(results: list[Result]) -> dict[str, Any]:
    by_key = {r.key: r for r in results}
    ratios = {r.key: round(r.ratio, 2) for r in results if r.ratio is not None}
    cpu_ratios = [round(r.cpu_ratio, 2) for r in results if r.cpu_ratio is not None]
    big, csv = by_key.get("lago_50_pages"), by_key.get("csv_100k")
    return {
        "worst_ratio": max(ratios.values()) if ratios else None,
        "worst_ratio_layout": max(ratios, key=lambda k: ratios[k]) if ratios else None,
        "worst_cpu_ratio": max(cpu_ratios) if cpu_ratios else None,
        "ratio_met": all(v <= TARGET_RATIO for v in ratios.values()) if ratios else None,
        "peak_50_pages_mb": round(big.rss_peak_mb, 1) if big else None,
        "peak_met": big.rss_peak_mb < TARGET_PEAK_MB if big else None,
        "csv_100k_s": round(csv.parse_ms / 1000, 3) if csv else None,
        "csv_100k_cpu_s": round(csv.parse_cpu_ms / 1000, 3) if csv else None,
        "csv_met": csv.parse_ms / 1000 < TARGET_CSV_S if csv else None,
    }


def table(results: list[Result]) -> str:
    """A Markdown table, ready for docs/benchmarks.md."""
    head = (
        "layout",
        "size",
        "pages",
        "parse ms/doc",
        "parse CPU ms/doc",
        "parse ms/page",
        "pdftotext ms/doc",
        "pdftotext CPU ms/doc",
        "parse / pdftotext",
        "peak RSS MB",
        "RSS before parse MB",
        "tracemalloc peak MB",
    )
    rows = [head]
    for r in results:
        rows.append(
            (
                r.layout,
                r.size,
                "-" if r.pages is None else str(r.pages),
                f"{r.parse_ms:.1f}",
                f"{r.parse_cpu_ms:.1f}",
                "-" if r.pages is None else f"{r.per_page_ms:.2f}",
                "-" if r.pdftotext_ms is None else f"{r.pdftotext_ms:.1f}",
                "-" if r.pdftotext_cpu_ms is None else f"{r.pdftotext_cpu_ms:.1f}",
                "-" if r.ratio is None else f"{r.ratio:.2f}",
                f"{r.rss_peak_mb:.0f}",
                f"{r.rss_before_mb:.0f}",
                f"{r.tracemalloc_peak_mb:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]

    def line(cells: tuple[str, ...] | list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    out = [
        line(
            [
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
        )
        for row in rows
    ]
    rule = ["-" * w if i < 2 else "-" * (w - 1) + ":" for i, w in enumerate(widths)]
    out.insert(1, line(rule))
    return "\n".join(out)


def report(host: dict[str, str], results: list[Result]) -> str:
    v = verdict(results)
    yes = {True: "met", False: "MISSED"}
    out = [
        f"{host['date']}; {host['nproc']} CPUs ({host['cpu']}); Python {host['python']}; "
        f"Linux {host['kernel']}; load average {host['load']}",
        f"pdftotext {host['pdftotext']}; pypdfium2 {host['pypdfium2']}; pandas {host['pandas']}",
        "parse: parse_file in-process; pdftotext -layout FILE - as a subprocess; medians of "
        "wall and CPU time; peak RSS: VmHWM of a fresh interpreter per file",
        "",
        table(results),
        "",
    ]
    if v["ratio_met"] is not None:
        out.append(
            f"parse / pdftotext per PDF document (wall): worst {v['worst_ratio']} "
            f"({v['worst_ratio_layout']}; CPU time: worst {v['worst_cpu_ratio']}) "
            f"(target <= {TARGET_RATIO:g}: {yes[v['ratio_met']]})"
        )
    if v["peak_met"] is not None:
        out.append(
            f"peak RSS on the 50-page invoice: {v['peak_50_pages_mb']} MB "
            f"(target < {TARGET_PEAK_MB:g} MB: {yes[v['peak_met']]})"
        )
    if v["csv_met"] is not None:
        out.append(
            f"100,000-row CSV: {v['csv_100k_s']} s wall, {v['csv_100k_cpu_s']} s CPU "
            f"(target < {TARGET_CSV_S:g} s: {yes[v['csv_met']]})"
        )
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument(
        "--budget", type=float, default=2.0, help="seconds of timed runs per layout and tool"
    )
    parser.add_argument("--only", help="comma-separated layout keys (lago_en, csv_100k, ...)")
    args = parser.parse_args(argv)
    if args.budget < 0:
        parser.error("--budget must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("pdftotext") is None:
        print("pdftotext not found: apt-get install -y poppler-utils", file=sys.stderr)
        return 2
    host = machine()
    print("making the files ...", file=sys.stderr, flush=True)
    all_cases = cases()
    wanted = set(args.only.split(",")) if args.only else {c.key for c in all_cases}
    unknown = wanted - {c.key for c in all_cases}
    if unknown:
        print(f"unknown layouts: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    parse_file("warm-up.pdf", docs.render(docs.SPECS["lago_en_eur"]))  # imports, registry
    parse_file("warm-up.csv", usage_csv(10)[0])
    results = []
    with tempfile.TemporaryDirectory(prefix="stax-bench-parse-") as folder:
        for case in all_cases:
            if case.key in wanted:
                print(f"{case.layout} ...", file=sys.stderr, flush=True)
                results.append(measure(case, Path(folder), args.budget))
    if args.json:
        document = {
            "machine": host,
            "results": [
                {
                    **asdict(r),
                    "per_page_ms": r.per_page_ms,
                    "ratio": r.ratio,
                    "cpu_ratio": r.cpu_ratio,
                }
                for r in results
            ],
            "targets": verdict(results),
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report(host, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
