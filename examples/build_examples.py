#!/usr/bin/env python3
"""Regenerate the failed-CI-run examples in this folder from REAL failing builds.

Usage:  python examples/build_examples.py            (takes about 1-3 minutes)
        python examples/build_examples.py --summary  (only print line counts and
                                                      root-cause line numbers)

What is real and what is not
----------------------------
* Every line of *tool output* (pytest, pip, gcc/make, javac, tsc, npm, git, the
  shell's ``Killed`` message ...) is produced by actually running that tool on a
  tiny sample project created in a temporary directory.  The only edits made to
  it are the replacement of machine-specific values (temporary paths, host name,
  the run date inside file names / the JUnit ``timestamp``) by neutral ones, done
  consistently and without changing the line structure.
* The *CI framing* around it (timestamps, runner banners, ``##[group]`` /
  ``section_start`` markers, checkout / setup step text, ``Finished: FAILURE``
  ...) is written by this script, following the format each platform documents
  and uses in its runner source (GitHub Actions runner v2.316.1 with
  actions/checkout v4.1.5, actions/setup-python v5.1.0, actions/setup-node
  v4.0.2; gitlab-runner v16.11.0; Azure Pipelines CmdLine@2; Jenkins pipeline).
  Timestamps come from a seeded pseudo-random clock, so framing is
  deterministic; only tool output (download speeds, durations) varies between
  runs.

Needs: python3 (3.11 used for the committed files), git, bash, sh, gcc, make,
javac/java, node + npm, network access to PyPI and the npm registry.
Standard library only.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import gzip
import hashlib
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
UTC = dt.UTC
PY_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BOM = "\ufeff"

# Neutral names used in place of machine-specific values.
GH_WORKSPACE = "/home/runner/work/demo/demo"
GH_TEMP = "/home/runner/work/_temp"
GH_PYTHON = f"/opt/hostedtoolcache/Python/{PY_VERSION}/x64"
GH_REPO = "demo-org/demo"
NEUTRAL_HOST = "ci-runner"

OUTPUTS = [
    "gha-pytest-failure.zip",
    "pytest-junit/report.xml",
    "pytest-junit/console.log",
    "jenkins-gcc-compile-error/consoleText",
    "gitlab-pip-dependency.log",
    "azure-npm-e404.log",
    "gha-timeout.log",
    "javac-compile-error.log.gz",
    "tsc-compile-error.log",
    "oom-killed.log",
]

LOG_LOCK = threading.Lock()


def log(msg: str) -> None:
    with LOG_LOCK:
        print(f"[build_examples] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Running real commands
# --------------------------------------------------------------------------


def base_env(home: Path, extra_path: list[Path] | None = None) -> dict[str, str]:
    """A clean environment: no user pip/npm config, fresh caches, UTF-8, UTC."""
    keep = [
        "PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "PIP_CERT",
        "CURL_CA_BUNDLE",
        "JAVA_HOME",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ]
    env = {k: os.environ[k] for k in keep if k in os.environ}
    home.mkdir(parents=True, exist_ok=True)
    npmrc = home / ".npmrc-ci"
    ca = os.environ.get("NODE_EXTRA_CA_CERTS") or os.environ.get("SSL_CERT_FILE")
    npmrc.write_text(f"cafile={ca}\n" if ca else "")
    env.update(
        HOME=str(home),
        USER="runner",
        LOGNAME="runner",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        TZ="UTC",
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_CACHE_DIR=str(home / ".cache" / "pip"),
        npm_config_cache=str(home / ".npm"),
        npm_config_userconfig=str(npmrc),
        npm_config_update_notifier="false",
        GIT_CONFIG_NOSYSTEM="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if extra_path:
        env["PATH"] = os.pathsep.join([str(p) for p in extra_path] + [env.get("PATH", "")])
    return env


def run(cmd, *, cwd: Path, env: dict[str, str], check: bool = False, timeout: float = 600) -> tuple[int, bytes]:
    """Run a real command; return (exit code, combined stdout+stderr)."""
    proc = subprocess.run(
        cmd,
        cwd=str(cwd),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {cmd}\n{proc.stdout.decode(errors='replace')}")
    return proc.returncode, proc.stdout


def write_out(path: Path, text: str) -> None:
    """Write an example byte-exactly (no newline translation: GitLab traces contain '\\r')."""
    path.write_bytes(text.encode("utf-8"))


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"))


class Scrubber:
    """Consistent replacement of machine-specific strings (longest first)."""

    def __init__(self, pairs: dict[str, str]):
        self.pairs = sorted(((k, v) for k, v in pairs.items() if k), key=lambda kv: -len(kv[0]))
        host = socket.gethostname()
        self.host_re = None
        if host and len(host) >= 4 and host != "localhost":
            self.host_re = re.compile(r"(?<![\w.-])" + re.escape(host) + r"(?![\w-])")

    def __call__(self, data: bytes | str) -> str:
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        for old, new in self.pairs:
            text = text.replace(old, new)
        if self.host_re:
            text = self.host_re.sub(NEUTRAL_HOST, text)
        return text


def dotnet_lines(text: str) -> list[str]:
    """Split like .NET StreamReader.ReadLine (used by the GitHub/Azure agents):
    '\\r\\n', '\\n' and a lone '\\r' all end a line."""
    if not text:
        return []
    parts = re.split(r"\r\n|\r|\n", text)
    if parts and parts[-1] == "":
        parts.pop()
    return parts


# --------------------------------------------------------------------------
# Deterministic clock for framing timestamps
# --------------------------------------------------------------------------


class Clock:
    TICKS = 10_000_000  # 100 ns ticks, like .NET DateTime

    def __init__(self, start: dt.datetime, seed: str):
        self.t = int(start.timestamp()) * self.TICKS
        self.rng = random.Random(seed)

    def tick(self, lo: float = 0.00002, hi: float = 0.0012) -> None:
        self.t += int(self.rng.uniform(lo, hi) * self.TICKS)

    def wait(self, seconds: float, jitter: float = 0.15) -> None:
        self.t += int(seconds * self.rng.uniform(1 - jitter, 1 + jitter) * self.TICKS)

    def iso7(self) -> str:
        secs, frac = divmod(self.t, self.TICKS)
        return dt.datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:07d}Z"

    def unix(self) -> int:
        return self.t // self.TICKS

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.t / self.TICKS, UTC)


def fake_hex(seed: str, n: int = 64) -> str:
    """Deterministic hex identifiers for framing (image digests, ids)."""
    out = ""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
        i += 1
    return out[:n]


def fake_uuid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "cimedic-examples/" + seed))


# --------------------------------------------------------------------------
# Sample projects
# --------------------------------------------------------------------------

PRICING_PROJECT = {
    "pyproject.toml": """
        [project]
        name = "pricing"
        version = "0.4.0"
        requires-python = ">=3.10"

        [tool.pytest.ini_options]
        pythonpath = ["."]
        testpaths = ["tests"]
        """,
    "requirements-dev.txt": """
        pytest==8.2.0
        pluggy==1.5.0
        iniconfig==2.0.0
        packaging==24.0
        """,
    "pricing/__init__.py": """
        from .cart import Cart, LineItem
        from .discounts import bulk_discount, parse_coupon

        __all__ = ["Cart", "LineItem", "bulk_discount", "parse_coupon"]
        """,
    "pricing/discounts.py": '''
        """Discount rules applied at checkout."""
        from decimal import ROUND_HALF_UP, Decimal

        BULK_THRESHOLD = 10
        BULK_RATE = Decimal("0.10")
        CENT = Decimal("0.01")


        def bulk_discount(quantity: int, subtotal: Decimal) -> Decimal:
            """10% off orders of BULK_THRESHOLD items or more."""
            if quantity > BULK_THRESHOLD:
                return (subtotal * BULK_RATE).quantize(CENT, ROUND_HALF_UP)
            return Decimal("0.00")


        def parse_coupon(code: str) -> tuple[str, int]:
            """Coupons look like 'SPRING-15': campaign name, dash, percentage."""
            campaign, percent = code.split("-")
            return campaign.upper(), int(percent)
        ''',
    "pricing/cart.py": '''
        """A shopping cart with line items and an optional coupon."""
        from dataclasses import dataclass, field
        from decimal import Decimal

        from .discounts import CENT, bulk_discount, parse_coupon


        @dataclass
        class LineItem:
            sku: str
            unit_price: Decimal
            quantity: int = 1

            @property
            def subtotal(self) -> Decimal:
                return self.unit_price * self.quantity


        @dataclass
        class Cart:
            items: list[LineItem] = field(default_factory=list)
            coupon: str | None = None

            def add(self, sku: str, unit_price: str, quantity: int = 1) -> None:
                self.items.append(LineItem(sku, Decimal(unit_price), quantity))

            def quantity(self) -> int:
                return sum(item.quantity for item in self.items)

            def subtotal(self) -> Decimal:
                return sum((item.subtotal for item in self.items), Decimal("0.00"))

            def total(self) -> Decimal:
                subtotal = self.subtotal()
                total = subtotal - bulk_discount(self.quantity(), subtotal)
                if self.coupon:
                    _, percent = parse_coupon(self.coupon)
                    total -= (total * percent / 100).quantize(CENT)
                return total
        ''',
    "tests/test_discounts.py": """
        from decimal import Decimal

        from pricing import bulk_discount, parse_coupon


        def test_no_bulk_discount_below_threshold():
            assert bulk_discount(9, Decimal("180.00")) == Decimal("0.00")


        def test_bulk_discount_applies_at_threshold():
            assert bulk_discount(10, Decimal("200.00")) == Decimal("20.00")


        def test_bulk_discount_above_threshold():
            assert bulk_discount(12, Decimal("240.00")) == Decimal("24.00")


        def test_parse_coupon():
            assert parse_coupon("spring-15") == ("SPRING", 15)
        """,
    "tests/test_totals.py": """
        from decimal import Decimal

        from pricing import Cart


        def make_cart():
            cart = Cart()
            cart.add("TSHIRT-M", "19.90", 2)
            cart.add("MUG", "8.50")
            return cart


        def test_subtotal():
            assert make_cart().subtotal() == Decimal("48.30")


        def test_total_without_coupon():
            assert make_cart().total() == Decimal("48.30")


        def test_total_with_coupon():
            cart = make_cart()
            cart.coupon = "SPRING-10"
            assert cart.total() == Decimal("43.47")


        def test_total_with_percent_coupon():
            cart = make_cart()
            cart.coupon = "SPRING-10%"
            assert cart.total() == Decimal("43.47")
        """,
}

JOBS_PROJECT = {
    "pyproject.toml": """
        [project]
        name = "jobs"
        version = "1.2.0"

        [tool.pytest.ini_options]
        pythonpath = ["."]
        testpaths = ["tests"]
        """,
    "requirements-dev.txt": PRICING_PROJECT["requirements-dev.txt"],
    "jobs/__init__.py": "",
    "jobs/retry.py": '''
        """Retry helper with exponential backoff."""
        import time


        def backoff_delays(attempts: int, base: float = 0.1, cap: float = 2.0) -> list[float]:
            return [min(cap, base * 2**i) for i in range(attempts)]


        def retry(fn, attempts: int = 3, sleep=time.sleep):
            last = None
            for delay in backoff_delays(attempts):
                try:
                    return fn()
                except OSError as exc:
                    last = exc
                    sleep(delay)
            raise last
        ''',
    "jobs/worker.py": '''
        """A background worker draining a job queue."""
        import queue
        import threading


        class Worker:
            def __init__(self, handler):
                self.queue: queue.Queue = queue.Queue()
                self.handler = handler
                self.done: list = []
                self.thread = threading.Thread(target=self._run, daemon=True)

            def start(self) -> None:
                self.thread.start()

            def submit(self, job) -> None:
                self.queue.put(job)

            def _run(self) -> None:
                while True:
                    job = self.queue.get()
                    self.done.append(self.handler(job))
                    self.queue.task_done()

            def drain(self) -> None:
                """Block until every submitted job has been handled."""
                self.queue.join()
        ''',
    "tests/test_retry.py": """
        import pytest

        from jobs.retry import backoff_delays, retry


        def test_backoff_is_capped():
            assert backoff_delays(6, base=0.5, cap=2.0) == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


        def test_retry_returns_first_success():
            calls = iter([OSError("boom"), "ok"])

            def flaky():
                value = next(calls)
                if isinstance(value, Exception):
                    raise value
                return value

            assert retry(flaky, sleep=lambda s: None) == "ok"


        def test_retry_gives_up():
            def broken():
                raise OSError("down")

            with pytest.raises(OSError):
                retry(broken, attempts=2, sleep=lambda s: None)
        """,
    "tests/test_worker.py": """
        from jobs.worker import Worker


        def test_worker_handles_jobs():
            worker = Worker(handler=lambda job: job * 2)
            worker.start()
            for job in (1, 2, 3):
                worker.submit(job)
            worker.drain()
            assert sorted(worker.done) == [2, 4, 6]


        def test_drain_after_bad_job():
            worker = Worker(handler=lambda job: 10 // job)
            worker.start()
            for job in (5, 0, 2):
                worker.submit(job)
            worker.drain()
            assert worker.done == [2, 5]


        def test_worker_is_daemon():
            assert Worker(handler=print).thread.daemon
        """,
}

C_PROJECT = {
    "Makefile": """
        CC      = gcc
        CFLAGS  = -std=c11 -Wall -Wextra -O2 -g
        LDLIBS  = -lm
        OBJS    = main.o csv.o stats.o report.o util.o

        csvstat: $(OBJS)
        \t$(CC) $(CFLAGS) -o $@ $(OBJS) $(LDLIBS)

        %.o: %.c csv.h stats.h report.h util.h
        \t$(CC) $(CFLAGS) -c -o $@ $<

        clean:
        \trm -f csvstat $(OBJS)

        .PHONY: clean
        """,
    "util.h": """
        #ifndef UTIL_H
        #define UTIL_H
        char *trim(char *s);
        #endif
        """,
    "util.c": """
        #include <ctype.h>
        #include <string.h>
        #include "util.h"

        char *trim(char *s)
        {
            while (isspace((unsigned char)*s))
                s++;
            char *end = s + strlen(s);
            while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\\0';
            return s;
        }
        """,
    "csv.h": """
        #ifndef CSV_H
        #define CSV_H
        #include <stddef.h>
        #include <stdio.h>

        #define CSV_MAX_LINE 1024
        #define CSV_MAX_FIELDS 32

        struct csv_row {
            char line[CSV_MAX_LINE];
            char *fields[CSV_MAX_FIELDS];
            double values[CSV_MAX_FIELDS];
            size_t n_fields;
        };

        int csv_read_row(FILE *fp, struct csv_row *row);
        #endif
        """,
    "csv.c": """
        #define _POSIX_C_SOURCE 200809L
        #include <stdlib.h>
        #include <string.h>
        #include "csv.h"
        #include "util.h"

        static size_t split_fields(char *line, char **fields, size_t max_fields)
        {
            size_t n = 0;
            char *save = NULL;
            for (char *tok = strtok_r(line, ",", &save); tok && n < max_fields;
                 tok = strtok_r(NULL, ",", &save))
                fields[n++] = trim(tok);
            return n;
        }

        int csv_read_row(FILE *fp, struct csv_row *row)
        {
            if (!fgets(row->line, sizeof row->line, fp))
                return 0;
            row->n_fields = split_fields(row->line, &row->fields, CSV_MAX_FIELDS);
            for (size_t i = 0; i < field_count; i++)
                row->values[i] = strtod(row->fields[i], NULL);
            return 1;
        }
        """,
    "stats.h": """
        #ifndef STATS_H
        #define STATS_H
        #include <stddef.h>

        struct stats {
            size_t n;
            double mean;
            double m2;
        };

        void stats_push(struct stats *s, double x);
        double stats_stddev(const struct stats *s);
        #endif
        """,
    "stats.c": """
        #include <math.h>
        #include "stats.h"

        void stats_push(struct stats *s, double x)
        {
            s->n++;
            double delta = x - s->mean;
            s->mean += delta / (double)s->n;
            s->m2 += delta * (x - s->mean);
        }

        double stats_stddev(const struct stats *s)
        {
            return s->n > 1 ? sqrt(s->m2 / (double)(s->n - 1)) : 0.0;
        }
        """,
    "report.h": """
        #ifndef REPORT_H
        #define REPORT_H
        #include <stdio.h>
        #include "stats.h"
        void report_print(FILE *out, const char *column, const struct stats *s);
        #endif
        """,
    "report.c": """
        #include "report.h"

        void report_print(FILE *out, const char *column, const struct stats *s)
        {
            fprintf(out, "%-16s n=%-6zu mean=%-10.3f sd=%.3f\\n",
                    column, s->n, s->mean, stats_stddev(s));
        }
        """,
    "main.c": """
        #include <stdio.h>
        #include "csv.h"
        #include "report.h"
        #include "stats.h"

        int main(int argc, char **argv)
        {
            struct csv_row row;
            struct stats col = {0};
            while (csv_read_row(stdin, &row))
                if (row.n_fields > 1)
                    stats_push(&col, row.values[1]);
            report_print(stdout, "column[1]", &col);
            return 0;
        }
        """,
}

JAVA_PROJECT = {
    "src/main/java/com/example/inventory/Item.java": """
        package com.example.inventory;

        import java.math.BigDecimal;

        public final class Item {
            private final String sku;
            private final String name;
            private final int qty;
            private final BigDecimal price;

            public Item(String sku, String name, int qty, BigDecimal price) {
                this.sku = sku;
                this.name = name;
                this.qty = qty;
                this.price = price;
            }

            public String getSku() { return sku; }
            public String getName() { return name; }
            public int getQty() { return qty; }
            public BigDecimal getPrice() { return price; }
        }
        """,
    "src/main/java/com/example/inventory/StockLevel.java": """
        package com.example.inventory;

        public enum StockLevel {
            OUT, LOW, OK;

            public static StockLevel of(int qty) {
                if (qty <= 0) return OUT;
                return qty < 5 ? LOW : OK;
            }
        }
        """,
    "src/main/java/com/example/inventory/Inventory.java": """
        package com.example.inventory;

        import java.util.ArrayList;
        import java.util.LinkedHashMap;
        import java.util.List;
        import java.util.Map;

        public class Inventory {
            private final Map<String, Item> items = new LinkedHashMap<>();

            public void add(Item item) {
                items.put(item.getSku(), item);
            }

            public List lowStock() {
                List result = new ArrayList();
                for (Item item : items.values()) {
                    if (StockLevel.of(item.getQty()) == StockLevel.LOW) {
                        result.add(item);
                    }
                }
                return result;
            }

            public int totalUnits() {
                int total = 0;
                for (Item item : items.values()) {
                    total += item.getQuantity();
                }
                return total;
            }

            public Iterable<Item> all() {
                return items.values();
            }
        }
        """,
    "src/main/java/com/example/inventory/InventoryService.java": """
        package com.example.inventory;

        import java.math.BigDecimal;

        public class InventoryService {
            private final Inventory inventory;

            public InventoryService(Inventory inventory) {
                this.inventory = inventory;
            }

            public int stockValueCents() {
                int cents = 0;
                for (Item item : inventory.all()) {
                    int unitPrice = item.getPrice();
                    cents += unitPrice * item.getQty();
                }
                return cents;
            }

            public BigDecimal averagePrice() {
                BigDecimal sum = BigDecimal.ZERO;
                int n = 0;
                for (Item item : inventory.all()) {
                    sum = sum.add(item.getPrice());
                    n++;
                }
                return n == 0 ? BigDecimal.ZERO : sum.divide(new BigDecimal(new Integer(n)), BigDecimal.ROUND_HALF_UP);
            }
        }
        """,
    "src/main/java/com/example/inventory/ReportPrinter.java": """
        package com.example.inventory;

        import java.io.PrintStream;

        public class ReportPrinter {
            private final PrintStream out;

            public ReportPrinter(PrintStream out) {
                this.out = out;
            }

            public void print(Inventory inventory) {
                for (Item item : inventory.all()) {
                    out.printf("%-10s %-24s %5d  %s%n", item.getSku(), item.getName(),
                            item.getQuantity(), StockLevel.of(item.getQty()));
                }
            }
        }
        """,
    "src/main/java/com/example/inventory/App.java": """
        package com.example.inventory;

        import java.math.BigDecimal;

        public class App {
            public static void main(String[] args) {
                Inventory inventory = new Inventory();
                inventory.add(new Item("SKU-1001", "Espresso beans 1kg", 12, new BigDecimal("18.90")));
                inventory.add(new Item("SKU-1002", "Milk frother", 3, new BigDecimal("34.50")));
                new ReportPrinter(System.out).print(inventory);
                System.out.println("units: " + inventory.totalUnits());
            }
        }
        """,
}

TS_PROJECT = {
    "package.json": """
        {
          "name": "storefront-web",
          "version": "2.3.0",
          "private": true,
          "scripts": {
            "typecheck": "tsc --noEmit"
          },
          "devDependencies": {
            "typescript": "5.4.5"
          }
        }
        """,
    "tsconfig.json": """
        {
          "compilerOptions": {
            "target": "ES2022",
            "module": "ESNext",
            "moduleResolution": "Bundler",
            "strict": true,
            "noEmit": true,
            "skipLibCheck": true
          },
          "include": ["src"]
        }
        """,
    "src/cart.ts": """
        export interface LineItem {
          sku: string;
          quantity: number;
          unitPrice: number;
        }

        export function parseQuantity(raw: string): number {
          const qty: number = raw.trim();
          return qty;
        }

        export function cartTotal(items: LineItem[]): number {
          return items.reduce((sum, item) => sum + item.quantity * item.price, 0);
        }
        """,
    "src/checkout.ts": """
        import { cartTotal, LineItem } from "./cart";

        export function applyCoupon(total: number, code: string): number {
          const percent = Number(code.split("-")[1] ?? 0);
          return Math.round(total * (100 - percent)) / 100;
        }

        export function checkoutTotal(items: LineItem[], coupon?: string): number {
          const total = cartTotal(items);
          return coupon ? applyCoupon(total, 10) : total;
        }
        """,
    "src/index.ts": """
        export * from "./cart";
        export * from "./checkout";
        """,
}

INDEX_PROJECT = {
    "requirements.txt": """
        click==8.1.7
        tomli==2.0.1
        """,
    "scripts/build_index.py": '''
        """Encode every document shard and build the in-memory vector index."""
        import argparse
        from array import array

        DIM = 512


        def encode_shard(shard: int, docs: int) -> array:
            # one float32 vector of DIM values per document
            return array("f", [shard / 100.0]) * (docs * DIM)


        def main() -> None:
            parser = argparse.ArgumentParser()
            parser.add_argument("--shards", type=int, default=40)
            parser.add_argument("--docs-per-shard", type=int, default=12000)
            args = parser.parse_args()

            print(f"[build_index] encoding {args.shards} shards x {args.docs_per_shard} docs (dim={DIM})", flush=True)
            vectors = []
            held = 0
            for shard in range(1, args.shards + 1):
                block = encode_shard(shard, args.docs_per_shard)
                vectors.append(block)
                held += block.itemsize * len(block)
                print(f"[build_index] shard {shard:02d}/{args.shards}: encoded {args.docs_per_shard} docs, "
                      f"vectors in memory: {held / 2**20:.1f} MiB", flush=True)
            print("[build_index] writing index.bin", flush=True)


        if __name__ == "__main__":
            main()
        ''',
}


def make_origin(tmp: Path, name: str, files: dict[str, str], message: str, when: str) -> tuple[Path, str]:
    """A git repository holding the sample project; the commit id is deterministic."""
    repo = tmp / "origin" / name
    repo.mkdir(parents=True)
    write_tree(repo, files)
    env = base_env(tmp / "gitconfig-home")
    env.update(
        GIT_AUTHOR_NAME="Demo Developer",
        GIT_AUTHOR_EMAIL="dev@example.com",
        GIT_COMMITTER_NAME="Demo Developer",
        GIT_COMMITTER_EMAIL="dev@example.com",
        GIT_AUTHOR_DATE=when,
        GIT_COMMITTER_DATE=when,
    )
    run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
    run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    run(["git", "commit", "-q", "-m", message], cwd=repo, env=env, check=True)
    _, sha = run(["git", "rev-parse", "HEAD"], cwd=repo, env=env, check=True)
    return repo, sha.decode().strip()


# --------------------------------------------------------------------------
# GitHub Actions framing
# --------------------------------------------------------------------------

ACTIONS = {
    "actions/checkout@v4": "44c2b7a8a4ea60a981eaca3cf939b5f4305c123b",  # v4.1.5
    "actions/setup-python@v5": "82c7e631bb3cdc910f68e0081d67478d79c6982d",  # v5.1.0
    "actions/setup-node@v4": "60edb5dd545a775178f52524783378180af0d1f8",  # v4.0.2
}


class GhaStep:
    def __init__(self, name: str, clock: Clock):
        self.name = name
        self.clock = clock
        self.lines: list[str] = []

    def out(self, *texts: str) -> None:
        for text in texts:
            for line in text.split("\n") if text else [""]:
                self.clock.tick()
                self.lines.append(f"{self.clock.iso7()} {line}")

    def tool(self, text: str, duration: float = 0.5, slow: str | None = None) -> None:
        """Real tool output, split the way the runner reads it.  `duration`
        seconds of framing time elapse before the lines matching `slow` (or,
        without it, unevenly across all lines)."""
        lines = dotnet_lines(text)
        if not lines:
            return
        rx = re.compile(slow) if slow else None
        weights = []
        for line in lines:
            if rx is None:
                weights.append(self.clock.rng.random() ** 4)
            else:
                weights.append(self.clock.rng.uniform(0.5, 1.5) if rx.search(ANSI_RE.sub("", line)) else 0.0)
        total = sum(weights) or 1.0
        for line, w in zip(lines, weights, strict=True):
            self.clock.t += int(duration * w / total * Clock.TICKS)
            self.clock.tick(0.00001, 0.0003)
            self.lines.append(f"{self.clock.iso7()} {line}")


class GhaJob:
    def __init__(self, name: str, clock: Clock):
        self.name = name
        self.clock = clock
        self.steps: list[GhaStep] = []

    def step(self, name: str) -> GhaStep:
        self.clock.wait(0.02)
        st = GhaStep(name, self.clock)
        self.steps.append(st)
        return st

    def job_log(self) -> str:
        return BOM + "".join(line + "\n" for st in self.steps for line in st.lines)

    def step_files(self) -> list[tuple[str, str]]:
        out = []
        for i, st in enumerate(self.steps, 1):
            safe = re.sub(r'[/\\:*?"<>|]', "", st.name)
            out.append((f"{i}_{safe}.txt", BOM + "".join(line + "\n" for line in st.lines)))
        return out


def gha_set_up_job(job: GhaJob, actions: list[str]) -> None:
    st = job.step("Set up job")
    st.out(
        "Current runner version: '2.316.1'",
        "##[group]Operating System",
        "Ubuntu",
        "22.04.4",
        "LTS",
        "##[endgroup]",
        "##[group]Runner Image",
        "Image: ubuntu-22.04",
        "Version: 20240505.1.0",
        "Included Software: https://github.com/actions/runner-images/blob/ubuntu22/20240505.1/images/ubuntu/Ubuntu2204-Readme.md",
        "Image Release: https://github.com/actions/runner-images/releases/tag/ubuntu22%2F20240505.1",
        "##[endgroup]",
        "##[group]Runner Image Provisioner",
        "2.0.369.1",
        "##[endgroup]",
        "##[group]GITHUB_TOKEN Permissions",
        "Contents: read",
        "Metadata: read",
        "##[endgroup]",
        "Secret source: Actions",
        "Prepare workflow directory",
        "Prepare all required actions",
        "Getting action download info",
    )
    job.clock.wait(0.4)
    for action in actions:
        name, ref = action.split("@")
        st.out(f"Download action repository '{name}@{ref}' (SHA:{ACTIONS[action]})")
        job.clock.wait(0.15)
    st.out(f"Complete job name: {job.name}")


class RealCheckout:
    """Runs the git commands actions/checkout runs, for real, in a fresh workspace."""

    def __init__(self, tmp: Path, origin: Path, sha: str, workspace: Path):
        self.workspace = workspace
        self.sha = sha
        home = tmp / "checkout-home"
        env = base_env(home)
        workspace.mkdir(parents=True, exist_ok=True)
        self.outputs: dict[str, str] = {}
        scrub = Scrubber({str(workspace): GH_WORKSPACE, f"file://{origin}": f"https://github.com/{GH_REPO}"})

        def git(key: str, *args: str) -> None:
            _, out = run(["git", *args], cwd=workspace, env=env)
            self.outputs[key] = scrub(out)

        git("version", "version")
        git("init", "init", str(workspace))
        git("remote", "remote", "add", "origin", f"file://{origin}")
        git("gc", "config", "--local", "gc.auto", "0")
        git("auth", "config", "--local", "http.https://github.com/.extraheader", "AUTHORIZATION: basic ***")
        git(
            "fetch",
            "-c",
            "protocol.version=2",
            "fetch",
            "--no-tags",
            "--prune",
            "--no-recurse-submodules",
            "--progress",
            "--depth=1",
            "origin",
            f"+{sha}:refs/remotes/origin/main",
        )
        git("sparse", "sparse-checkout", "disable")
        git("checkout", "checkout", "--progress", "--force", "-B", "main", "refs/remotes/origin/main")
        git("log", "log", "-1", "--format='%H'")
        git(
            "extraheader",
            "config",
            "--local",
            "--name-only",
            "--get-regexp",
            r"http\.https\:\/\/github\.com\/\.extraheader",
        )


def gha_checkout(job: GhaJob, co: RealCheckout, step_name: str = "Run actions/checkout@v4") -> None:
    st = job.step(step_name)
    st.out(
        "##[group]Run actions/checkout@v4",
        "with:",
        f"  repository: {GH_REPO}",
        "  token: ***",
        "  ssh-strict: true",
        "  ssh-user: git",
        "  persist-credentials: true",
        "  clean: true",
        "  sparse-checkout-cone-mode: true",
        "  fetch-depth: 1",
        "  fetch-tags: false",
        "  show-progress: true",
        "  lfs: false",
        "  submodules: false",
        "  set-safe-directory: true",
        "##[endgroup]",
        f"Syncing repository: {GH_REPO}",
        "##[group]Getting Git version info",
        f"Working directory is '{GH_WORKSPACE}'",
        "[command]/usr/bin/git version",
    )
    st.tool(co.outputs["version"], 0.01)
    tmp_home = f"{GH_TEMP}/{fake_uuid(co.sha + job.name + 'home')}"
    st.out(
        "##[endgroup]",
        f"Temporarily overriding HOME='{tmp_home}' before making global git config changes",
        "Adding repository directory to the temporary git global config as a safe directory",
        f"[command]/usr/bin/git config --global --add safe.directory {GH_WORKSPACE}",
        f"Deleting the contents of '{GH_WORKSPACE}'",
        "##[group]Initializing the repository",
        f"[command]/usr/bin/git init {GH_WORKSPACE}",
    )
    st.tool(co.outputs["init"], 0.01)
    st.out(
        f"[command]/usr/bin/git remote add origin https://github.com/{GH_REPO}",
        "##[endgroup]",
        "##[group]Disabling automatic garbage collection",
        "[command]/usr/bin/git config --local gc.auto 0",
        "##[endgroup]",
        "##[group]Setting up auth",
        r"[command]/usr/bin/git config --local --name-only --get-regexp core\.sshCommand",
        r"""[command]/usr/bin/git submodule foreach --recursive sh -c "git config --local --name-only --get-regexp 'core\.sshCommand' && git config --local --unset-all 'core.sshCommand' || :" """.rstrip(),
        r"[command]/usr/bin/git config --local --name-only --get-regexp http\.https\:\/\/github\.com\/\.extraheader",
        r"""[command]/usr/bin/git submodule foreach --recursive sh -c "git config --local --name-only --get-regexp 'http\.https\:\/\/github\.com\/\.extraheader' && git config --local --unset-all 'http.https://github.com/.extraheader' || :" """.rstrip(),
        "[command]/usr/bin/git config --local http.https://github.com/.extraheader AUTHORIZATION: basic ***",
        "##[endgroup]",
        "##[group]Fetching the repository",
        "[command]/usr/bin/git -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules "
        f"--progress --depth=1 origin +{co.sha}:refs/remotes/origin/main",
    )
    st.tool(co.outputs["fetch"], 0.35)
    st.out(
        "##[endgroup]",
        "##[group]Determining the checkout info",
        "##[endgroup]",
        "[command]/usr/bin/git sparse-checkout disable",
        "[command]/usr/bin/git config --local --unset-all extensions.worktreeConfig",
        "##[group]Checking out the ref",
        "[command]/usr/bin/git checkout --progress --force -B main refs/remotes/origin/main",
    )
    st.tool(co.outputs["checkout"], 0.05)
    st.out("##[endgroup]", "[command]/usr/bin/git log -1 --format='%H'")
    st.tool(co.outputs["log"], 0.01)


def gha_post_checkout(job: GhaJob, co: RealCheckout) -> None:
    st = job.step("Post Run actions/checkout@v4")
    st.out("Post job cleanup.", "[command]/usr/bin/git version")
    st.tool(co.outputs["version"], 0.01)
    tmp_home = f"{GH_TEMP}/{fake_uuid(co.sha + job.name + 'post-home')}"
    st.out(
        f"Temporarily overriding HOME='{tmp_home}' before making global git config changes",
        "Adding repository directory to the temporary git global config as a safe directory",
        f"[command]/usr/bin/git config --global --add safe.directory {GH_WORKSPACE}",
        r"[command]/usr/bin/git config --local --name-only --get-regexp core\.sshCommand",
        r"""[command]/usr/bin/git submodule foreach --recursive sh -c "git config --local --name-only --get-regexp 'core\.sshCommand' && git config --local --unset-all 'core.sshCommand' || :" """.rstrip(),
        r"[command]/usr/bin/git config --local --name-only --get-regexp http\.https\:\/\/github\.com\/\.extraheader",
    )
    st.tool(co.outputs["extraheader"], 0.01)
    st.out(
        "[command]/usr/bin/git config --local --unset-all http.https://github.com/.extraheader",
        r"""[command]/usr/bin/git submodule foreach --recursive sh -c "git config --local --name-only --get-regexp 'http\.https\:\/\/github\.com\/\.extraheader' && git config --local --unset-all 'http.https://github.com/.extraheader' || :" """.rstrip(),
    )


def gha_setup_python(job: GhaJob, name: str = "Set up Python") -> None:
    st = job.step(name)
    st.out(
        "##[group]Run actions/setup-python@v5",
        "with:",
        "  python-version: 3.11",
        "  check-latest: false",
        "  token: ***",
        "  update-environment: true",
        "  allow-prereleases: false",
        "##[endgroup]",
        "##[group]Installed versions",
    )
    job.clock.wait(0.6)
    st.out(f"Successfully set up CPython ({PY_VERSION})", "##[endgroup]")


PIP_SLOW = r"^(Collecting |  Downloading |Installing collected|Successfully installed)"

PY_ENV = [
    f"  pythonLocation: {GH_PYTHON}",
    f"  PKG_CONFIG_PATH: {GH_PYTHON}/lib/pkgconfig",
    f"  Python_ROOT_DIR: {GH_PYTHON}",
    f"  Python2_ROOT_DIR: {GH_PYTHON}",
    f"  Python3_ROOT_DIR: {GH_PYTHON}",
    f"  LD_LIBRARY_PATH: {GH_PYTHON}/lib",
]


def gha_run_header(st: GhaStep, script: str, env_lines: list[str] | None = None) -> None:
    lines = script.strip("\n").split("\n")
    st.out(f"##[group]Run {lines[0]}")
    for line in lines:
        st.out(f"\x1b[36;1m{line}\x1b[0m")
    st.out("shell: /usr/bin/bash -e {0}")
    if env_lines:
        st.out("env:", *env_lines)
    st.out("##[endgroup]")


def gha_complete_job(job: GhaJob, orphans: list[str] | None = None) -> None:
    st = job.step("Complete job")
    st.out("Cleaning up orphan processes")
    for orphan in orphans or []:
        st.out(orphan)


def run_step_script(script: str, *, tmp: Path, workspace: Path, env: dict[str, str], name: str) -> tuple[int, bytes]:
    """Run a `run:` block the way the runner does: bash -e <temp file>."""
    temp = tmp / "_temp"
    temp.mkdir(parents=True, exist_ok=True)
    path = temp / f"{fake_uuid(name)}.sh"
    path.write_text(script.strip("\n") + "\n")
    return run(["bash", "-e", str(path)], cwd=workspace, env=env)


def make_toolcache_python(tmp: Path) -> Path:
    """A fresh interpreter prefix standing in for /opt/hostedtoolcache/Python/X/x64."""
    prefix = tmp / "hostedtoolcache" / "Python" / PY_VERSION / "x64"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True)
    return prefix


# --------------------------------------------------------------------------
# 1. GitHub Actions run-logs archive (lint ok, test fails) + pytest-junit
# --------------------------------------------------------------------------


def build_gha_pytest(tmp: Path) -> dict:
    origin, sha = make_origin(
        tmp, "pricing", PRICING_PROJECT, "Apply bulk discount only above the threshold", "2024-05-14T09:04:51Z"
    )
    clock = Clock(dt.datetime(2024, 5, 14, 9, 12, 3, tzinfo=UTC), "gha-pytest")
    run_start = clock.t
    jobs: list[GhaJob] = []
    info: dict = {}

    # ---- job "lint" (succeeds)
    jt = tmp / "lint"
    job = GhaJob("lint", clock)
    jobs.append(job)
    co = RealCheckout(jt, origin, sha, jt / "work" / "demo" / "demo")
    prefix = make_toolcache_python(jt)
    scrub = Scrubber({str(co.workspace): GH_WORKSPACE, str(prefix): GH_PYTHON, str(jt): "/home/runner"})
    env = base_env(jt / "home", [prefix / "bin"])
    gha_set_up_job(job, ["actions/checkout@v4", "actions/setup-python@v5"])
    gha_checkout(job, co)
    gha_setup_python(job)
    script = """
python -m pip install pyflakes==3.2.0
python -m pyflakes pricing tests
python -m compileall pricing tests
"""
    st = job.step("Lint")
    gha_run_header(st, script, PY_ENV)
    code, out = run_step_script(script, tmp=jt, workspace=co.workspace, env=env, name="lint-step")
    if code != 0:
        raise RuntimeError("lint job was expected to pass:\n" + out.decode(errors="replace"))
    st.tool(scrub(out), 3.1, PIP_SLOW + r"|^Listing")
    post = job.step("Post Set up Python")
    post.out("Post job cleanup.")
    gha_post_checkout(job, co)
    gha_complete_job(job)

    # ---- job "test" (fails)
    clock.t = run_start + int(clock.rng.uniform(1.1, 2.4) * Clock.TICKS)  # both jobs run in parallel
    tt = tmp / "test"
    job = GhaJob("test", clock)
    jobs.append(job)
    co = RealCheckout(tt, origin, sha, tt / "work" / "demo" / "demo")
    prefix = make_toolcache_python(tt)
    scrub = Scrubber({str(co.workspace): GH_WORKSPACE, str(prefix): GH_PYTHON, str(tt): "/home/runner"})
    env = base_env(tt / "home", [prefix / "bin"])
    gha_set_up_job(job, ["actions/checkout@v4", "actions/setup-python@v5"])
    gha_checkout(job, co)
    gha_setup_python(job)
    script = """
python -m pip install -r requirements-dev.txt
pytest -q --color=yes
"""
    st = job.step("Run tests")
    gha_run_header(st, script, PY_ENV)
    code, out = run_step_script(script, tmp=tt, workspace=co.workspace, env=env, name="test-step")
    if code == 0:
        raise RuntimeError("pytest was expected to fail")
    st.tool(scrub(out), 5.5, PIP_SLOW + r"|\[100%\]")
    st.out(f"##[error]Process completed with exit code {code}.")
    gha_post_checkout(job, co)
    gha_complete_job(job)

    # ---- the same test suite, plain console + JUnit XML
    code2, out2 = run(["pytest", "-q", "--junitxml=report.xml"], cwd=co.workspace, env=env)
    if code2 == 0:
        raise RuntimeError("pytest (junit run) was expected to fail")
    junit_dir = HERE / "pytest-junit"
    junit_dir.mkdir(exist_ok=True)
    write_out(junit_dir / "console.log", scrub(out2))
    xml = scrub((co.workspace / "report.xml").read_bytes())
    stamp = clock.now().replace(tzinfo=None).isoformat(timespec="microseconds")
    xml = re.sub(r'timestamp="[^"]*"', f'timestamp="{stamp}"', xml)
    xml = re.sub(r'hostname="[^"]*"', f'hostname="{NEUTRAL_HOST}"', xml)
    write_out(junit_dir / "report.xml", xml)

    # ---- the archive
    date_time = (2024, 5, 14, 9, 15, 0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:

        def add(name: str, text: str) -> None:
            zi = zipfile.ZipInfo(name, date_time)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, text.encode("utf-8"))

        for n, job in enumerate(jobs):
            add(f"{n}_{job.name}.txt", job.job_log())
        for job in jobs:
            for fname, text in job.step_files():
                add(f"{job.name}/{fname}", text)
    (HERE / "gha-pytest-failure.zip").write_bytes(buf.getvalue())
    info["sha"] = sha
    return info


# --------------------------------------------------------------------------
# 5. GitHub Actions job log: step timeout
# --------------------------------------------------------------------------


def run_until_runner_timeout(
    script_path: Path, *, cwd: Path, env: dict[str, str], hang_after: float
) -> tuple[bytes, list[str]]:
    """Reproduce what the GitHub runner does when timeout-minutes expires:
    SIGINT to the step's shell, 7.5 s later SIGTERM, and once the shell is gone
    but the output pipe is still held open, kill the remaining process tree after
    5 s (actions/runner ProcessInvoker.CancelAndKillProcessTree)."""
    proc = subprocess.Popen(
        ["bash", "-e", str(script_path)],
        cwd=str(cwd),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stdout.read1(65536), b"")))
    reader.start()
    events = []
    time.sleep(hang_after)
    if proc.poll() is not None:
        raise RuntimeError("test step finished before the timeout")
    os.kill(proc.pid, signal.SIGINT)
    events.append("SIGINT")
    try:
        proc.wait(7.5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGTERM)
        events.append("SIGTERM")
        try:
            proc.wait(2.5)
        except subprocess.TimeoutExpired:
            events.append("still running")
    reader.join(5)
    if reader.is_alive():
        os.killpg(proc.pid, signal.SIGKILL)
        events.append("SIGKILL process tree")
        reader.join()
    proc.wait()
    return b"".join(chunks), events


def build_gha_timeout(tmp: Path) -> dict:
    origin, sha = make_origin(
        tmp, "jobs", JOBS_PROJECT, "worker: stop swallowing handler errors", "2024-05-14T10:21:07Z"
    )
    clock = Clock(dt.datetime(2024, 5, 14, 10, 27, 41, tzinfo=UTC), "gha-timeout")
    job = GhaJob("test", clock)
    co = RealCheckout(tmp, origin, sha, tmp / "work" / "demo" / "demo")
    prefix = make_toolcache_python(tmp)
    scrub = Scrubber({str(co.workspace): GH_WORKSPACE, str(prefix): GH_PYTHON, str(tmp): "/home/runner"})
    env = base_env(tmp / "home", [prefix / "bin"])
    gha_set_up_job(job, ["actions/checkout@v4", "actions/setup-python@v5"])
    gha_checkout(job, co)
    gha_setup_python(job)

    install = "python -m pip install -r requirements-dev.txt"
    st = job.step("Install dependencies")
    gha_run_header(st, install, PY_ENV)
    code, out = run_step_script(install, tmp=tmp, workspace=co.workspace, env=env, name="install")
    if code != 0:
        raise RuntimeError(out.decode(errors="replace"))
    st.tool(scrub(out), 4.2, PIP_SLOW)

    tests = "pytest -v --color=yes"
    st = job.step("Run tests")
    gha_run_header(st, tests, PY_ENV)
    path = tmp / "_temp" / f"{fake_uuid('run-tests')}.sh"
    path.write_text(tests + "\n")
    out, events = run_until_runner_timeout(path, cwd=co.workspace, env=env, hang_after=6)
    lines = dotnet_lines(scrub(out))
    # everything except the line of the hung test arrives within the first second;
    # the runner only receives the unterminated last line when the pipe closes.
    st.tool("\n".join(lines[:-1]) + "\n", 0.9, r"test session starts|PASSED|FAILED")
    clock.wait(60 + 7.5 + 5 - 0.9, jitter=0.002)
    st.tool(lines[-1] + "\n", 0.001)
    st.out("##[error]The action 'Run tests' has timed out after 1 minutes.")
    gha_post_checkout(job, co)
    gha_complete_job(job)
    write_out(HERE / "gha-timeout.log", job.job_log())
    return {"signals": events}


# --------------------------------------------------------------------------
# 7. GitHub Actions job log: tsc errors
# --------------------------------------------------------------------------


def build_tsc(tmp: Path) -> dict:
    # package-lock.json is part of the committed project: create it for real first
    seed = tmp / "lock"
    write_tree(seed, TS_PROJECT)
    env0 = base_env(tmp / "lock-home")
    run(["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"], cwd=seed, env=env0, check=True)
    files = dict(TS_PROJECT)
    files["package-lock.json"] = (seed / "package-lock.json").read_text()
    origin, sha = make_origin(tmp, "web", files, "cart: show line totals", "2024-05-14T11:02:19Z")

    clock = Clock(dt.datetime(2024, 5, 14, 11, 8, 26, tzinfo=UTC), "gha-tsc")
    job = GhaJob("typecheck", clock)
    co = RealCheckout(tmp, origin, sha, tmp / "work" / "demo" / "demo")
    scrub = Scrubber({str(co.workspace): GH_WORKSPACE, str(tmp): "/home/runner"})
    env = base_env(tmp / "home")
    gha_set_up_job(job, ["actions/checkout@v4", "actions/setup-node@v4"])
    gha_checkout(job, co)

    st = job.step("Set up Node")
    st.out(
        "##[group]Run actions/setup-node@v4",
        "with:",
        "  node-version: 20",
        "  always-auth: false",
        "  check-latest: false",
        "  token: ***",
        "##[endgroup]",
    )
    _, node_v = run(["node", "--version"], cwd=tmp, env=env)
    node_v = node_v.decode().strip()
    st.out(f"Found in cache @ /opt/hostedtoolcache/node/{node_v.lstrip('v')}/x64", "##[group]Environment details")
    for tool in ("node", "npm", "yarn"):
        version = ""
        if shutil.which(tool, path=env["PATH"]):
            _, v = run([tool, "--version"], cwd=tmp, env=env)
            version = v.decode().strip()
        st.out(f"{tool}: {version}")
    st.out("##[endgroup]")

    st = job.step("Install dependencies")
    gha_run_header(st, "npm ci --no-audit")
    code, out = run_step_script("npm ci --no-audit", tmp=tmp, workspace=co.workspace, env=env, name="npm-ci")
    if code != 0:
        raise RuntimeError(out.decode(errors="replace"))
    st.tool(scrub(out), 2.4, r"^added ")

    st = job.step("Type check")
    gha_run_header(st, "npx tsc --noEmit")
    code, out = run_step_script("npx tsc --noEmit", tmp=tmp, workspace=co.workspace, env=env, name="tsc")
    if code == 0:
        raise RuntimeError("tsc was expected to fail")
    # setup-node registers the tsc problem matcher (.github/tsc.json); the runner
    # writes every matched line as an error annotation: "##[error]" + the line.
    tsc_re = re.compile(r"^([^\s].*)[\(:](\d+)[,:](\d+)(?:\):\s+|\s+-\s+)(error|warning|info)\s+TS(\d+)\s*:\s*(.*)$")
    converted = []
    for line in dotnet_lines(scrub(out)):
        stripped = ANSI_RE.sub("", line)
        m = tsc_re.match(stripped)
        if m:
            tag = {"error": "error", "warning": "warning"}.get(m.group(4))
            converted.append(f"##[{tag}]{stripped}" if tag else line)
        else:
            converted.append(line)
    st.tool("\n".join(converted) + "\n", 2.2, r"TS2322")
    st.out(f"##[error]Process completed with exit code {code}.")
    gha_post_checkout(job, co)
    gha_complete_job(job)
    write_out(HERE / "tsc-compile-error.log", job.job_log())
    return {"node": node_v}


# --------------------------------------------------------------------------
# GitLab job trace framing (gitlab-runner v16.11.0, docker executor)
# --------------------------------------------------------------------------

CLEAR = "\x1b[0K"
RESET = "\x1b[0;m"
CYAN = "\x1b[36;1m"
GREEN = "\x1b[32;1m"
RED = "\x1b[31;1m"


class GitlabTrace:
    def __init__(self, clock: Clock):
        self.clock = clock
        self.parts: list[str] = []

    def println(self, msg: str) -> None:  # buildlogger Println
        self.parts.append(f"{CLEAR}{msg}{RESET}\n")

    def raw(self, text: str) -> None:
        self.parts.append(text)

    def section_start(self, name: str, header: str) -> None:
        self.parts.append(f"section_start:{self.clock.unix()}:{name}\r{CLEAR}")
        self.println(f"{CYAN}{header}{RESET}")

    def section_end(self, name: str) -> None:
        self.parts.append(f"section_end:{self.clock.unix()}:{name}\r{CLEAR}")

    def text(self) -> str:
        return "".join(self.parts)


def gitlab_script(commands: list[str], workdir: str) -> str:
    """The shape of the bash script gitlab-runner generates for step_script:
    every command is echoed in bold green, then run, stopping at the first error."""
    out = ["set -eo pipefail", "set +o noclobber", f'cd "{workdir}"']
    for cmd in commands:
        echo = f"{GREEN}$ {cmd}{RESET}"
        out.append("echo " + "$'" + echo.replace("\\", "\\\\").replace("'", "\\'").replace("\x1b", "\\x1b") + "'")
        out.append(cmd)
    return "\n".join(out) + "\n"


def gitlab_job(
    tmp: Path,
    *,
    clock: Clock,
    image: str,
    project_path: str,
    origin: Path,
    sha: str,
    commands: list[str],
    durations: float,
    setup=None,
) -> tuple[str, int]:
    builds = tmp / "builds" / project_path
    builds.parent.mkdir(parents=True, exist_ok=True)
    env = base_env(tmp / "home")
    scrub = Scrubber({str(builds): f"/builds/{project_path}", str(tmp / "home"): "/root", str(tmp): "/tmp"})
    digest = fake_hex("image-id " + image)
    repo_digest = fake_hex("repo-digest " + image)
    image_line = (
        f"Using docker image sha256:{digest} for {image} with digest {image.split(':')[0]}@sha256:{repo_digest} ..."
    )

    tr = GitlabTrace(clock)
    tr.println("Running with gitlab-runner 16.11.0 (91a27b2a)")
    tr.println("  on docker-runner-01 Xy3kR9tQ, system ID: s_4c1b7e2f9a0d")
    tr.section_start("prepare_executor", 'Preparing the "docker" executor')
    tr.println(f"Using Docker executor with image {image} ...")
    tr.println(f"Pulling docker image {image} ...")
    clock.wait(7.5)
    tr.println(image_line)
    tr.section_end("prepare_executor")
    tr.section_start("prepare_script", "Preparing environment")
    clock.wait(0.8)
    tr.raw("Running on runner-xy3kr9tq-project-4242-concurrent-0 via docker-runner-01...\n")
    tr.section_end("prepare_script")
    tr.section_start("get_sources", "Getting source from Git repository")
    # real git for the repository initialisation / checkout
    tmpl = tmp / "git-template"
    tmpl.mkdir(parents=True, exist_ok=True)
    run(["git", "config", "-f", str(tmpl / "config"), "init.defaultBranch", "none"], cwd=tmp, env=env, check=True)
    run(["git", "config", "-f", str(tmpl / "config"), "fetch.recurseSubmodules", "false"], cwd=tmp, env=env, check=True)
    _, init_out = run(["git", "init", str(builds), "--template", str(tmpl)], cwd=tmp, env=env)
    run(["git", "remote", "add", "origin", f"file://{origin}"], cwd=builds, env=env, check=True)
    run(
        [
            "git",
            "fetch",
            "origin",
            "--no-recurse-submodules",
            "+refs/heads/*:refs/remotes/origin/*",
            "--depth",
            "20",
            "--prune",
            "--quiet",
        ],
        cwd=builds,
        env=env,
        check=True,
    )
    run(["git", "-c", "submodule.recurse=false", "checkout", "-f", "-q", sha], cwd=builds, env=env, check=True)
    tr.raw(f"{GREEN}Fetching changes with git depth set to 20...{RESET}\n")
    tr.raw(scrub(init_out))
    tr.raw(f"{GREEN}Created fresh repository.{RESET}\n")
    clock.wait(1.2)
    tr.raw(f"{GREEN}Checking out {sha[:8]} as detached HEAD (ref is main)...{RESET}\n")
    tr.raw("\n")
    tr.raw(f"{GREEN}Skipping Git submodules setup{RESET}\n")
    clock.wait(0.4)
    tr.section_end("get_sources")
    if setup:
        setup(builds, env)
    tr.section_start("step_script", 'Executing "step_script" stage of the job script')
    tr.println(image_line)
    script = tmp / "step_script.sh"
    script.write_text(gitlab_script(commands, str(builds)))
    code, out = run(["bash", str(script)], cwd=builds, env=env)
    tr.raw(scrub(out))
    clock.wait(durations)
    tr.section_end("step_script")
    tr.section_start("cleanup_file_variables", "Cleaning up project directory and file based variables")
    clock.wait(0.6)
    tr.section_end("cleanup_file_variables")
    if code == 0:
        raise RuntimeError("GitLab job script was expected to fail:\n" + out.decode(errors="replace"))
    # SoftErrorln(fmt.Sprintln("Job failed:", err)) -> the reset lands after the newline
    tr.raw(f"{RED}ERROR: Job failed: exit code {code}\n{RESET}\n")
    return tr.text(), code


def build_gitlab_pip(tmp: Path) -> dict:
    files = {
        "requirements.txt": """
            # runtime dependencies (pinned)
            click==8.1.7
            jinja2==3.1.4
            markupsafe==2.1.5
            python-dateutil==2.9.0.post0
            pyyaml==6.0.1
            six==1.16.0
            requests==2.32.99
            urllib3==2.2.1
            """,
        "app.py": """
            import click
            import requests


            @click.command()
            @click.argument("url")
            def main(url):
                click.echo(requests.get(url, timeout=10).status_code)
            """,
    }
    origin, sha = make_origin(tmp, "api-client", files, "Bump requests", "2024-05-14T12:40:33Z")
    clock = Clock(dt.datetime(2024, 5, 14, 12, 44, 9, tzinfo=UTC), "gitlab-pip")
    text, code = gitlab_job(
        tmp,
        clock=clock,
        image=f"python:{PY_VERSION}-bookworm",
        project_path="demo-group/api-client",
        origin=origin,
        sha=sha,
        durations=6.3,
        commands=[
            "python --version",
            "python -m venv .venv",
            "source .venv/bin/activate",
            "pip install --upgrade pip==24.0 setuptools==69.5.1 wheel==0.43.0",
            "pip --version",
            "pip install -r requirements.txt",
        ],
    )
    write_out(HERE / "gitlab-pip-dependency.log", text)
    return {"exit": code}


def build_gitlab_javac(tmp: Path) -> dict:
    origin, sha = make_origin(
        tmp, "inventory", JAVA_PROJECT, "Item: rename getQuantity() to getQty()", "2024-05-14T13:15:02Z"
    )
    clock = Clock(dt.datetime(2024, 5, 14, 13, 17, 48, tzinfo=UTC), "gitlab-javac")
    text, code = gitlab_job(
        tmp,
        clock=clock,
        image="registry.example.com/ci/jdk17:bookworm",
        project_path="demo-group/inventory",
        origin=origin,
        sha=sha,
        durations=4.1,
        commands=[
            "javac -version",
            "mkdir -p build/classes",
            "find src/main/java -name '*.java' | sort > sources.txt",
            "cat sources.txt",
            "javac -Xlint:all -encoding UTF-8 -d build/classes @sources.txt",
        ],
    )
    with (
        open(HERE / "javac-compile-error.log.gz", "wb") as fh,
        gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz,
    ):
        gz.write(text.encode("utf-8"))
    return {"exit": code}


# --------------------------------------------------------------------------
# Azure DevOps step log (CmdLine@2)
# --------------------------------------------------------------------------


def build_azure_npm(tmp: Path) -> dict:
    env0 = base_env(tmp / "npm10-home")
    npm10 = tmp / "npm10"
    # npm 10.5.0 is the npm that shipped with Node 18/20 on hosted agents in May 2024
    run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(npm10), "npm@10.5.0"],
        cwd=tmp,
        env=env0,
        check=True,
    )
    work = tmp / "vsts" / "work"
    src = work / "1" / "s"
    write_tree(
        src,
        {
            "package.json": """
            {
              "name": "storefront-web",
              "version": "1.4.0",
              "private": true,
              "scripts": {
                "build": "node build.js"
              },
              "dependencies": {
                "@cimedic-example/design-tokens": "^2.1.0",
                "lodash.debounce": "4.0.8"
              }
            }
            """,
            "build.js": "console.log('build');\n",
        },
    )
    home = tmp / "vsts" / "home"
    env = base_env(home, [npm10 / "node_modules" / ".bin"])
    script_text = "npm install --color always"
    temp = work / "_temp"
    temp.mkdir(parents=True, exist_ok=True)
    guid = fake_uuid("azure-npm-script")
    script = temp / f"{guid}.sh"
    script.write_text(script_text)
    code, out = run(["bash", "--noprofile", "--norc", str(script)], cwd=src, env=env)
    if code == 0:
        raise RuntimeError("npm install was expected to fail")

    clock = Clock(dt.datetime(2024, 5, 14, 14, 3, 55, tzinfo=UTC), "azure-npm")
    scrub = Scrubber(
        {str(src): "/home/vsts/work/1/s", str(work): "/home/vsts/work", str(home): "/home/vsts", str(tmp): "/tmp"}
    )
    stamp = clock.now().strftime("%Y-%m-%dT%H_%M_%S_") + "412Z"
    tool = re.sub(r"\d{4}-\d\d-\d\dT\d\d_\d\d_\d\d_\d{3}Z-debug-0\.log", stamp + "-debug-0.log", scrub(out))
    lines: list[str] = []

    def emit(*texts: str) -> None:
        for t in texts:
            clock.tick()
            lines.append(f"{clock.iso7()} {t}")

    emit(
        "##[section]Starting: npm install",
        "=" * 78,
        "Task         : Command line",
        "Description  : Run a command line script using Bash on Linux and macOS and cmd.exe on Windows",
        "Version      : 2.231.1",
        "Author       : Microsoft Corporation",
        "Help         : https://docs.microsoft.com/azure/devops/pipelines/tasks/utility/command-line",
        "=" * 78,
    )
    clock.wait(0.3)
    emit(
        "Generating script.",
        "Script contents:",
        script_text,
        "========================== Starting Command Output ===========================",
        f"[command]/usr/bin/bash --noprofile --norc /home/vsts/work/_temp/{guid}.sh",
    )
    clock.wait(1.4)
    for line in dotnet_lines(tool):
        clock.tick(0.0001, 0.02)
        lines.append(f"{clock.iso7()} {line}")
    clock.wait(0.05)
    emit(f"##[error]Bash exited with code '{code}'.", "##[section]Finishing: npm install")
    write_out(HERE / "azure-npm-e404.log", "".join(line + "\n" for line in lines))
    _, v = run(["npm", "--version"], cwd=tmp, env=env)
    return {"npm": v.decode().strip()}


# --------------------------------------------------------------------------
# Jenkins consoleText (no timestamps)
# --------------------------------------------------------------------------


def jenkins_checkout(url: str, workspace: str, sha: str, message: str, git_version: str) -> list[str]:
    return [
        "[Pipeline] stage",
        "[Pipeline] { (Declarative: Checkout SCM)",
        "[Pipeline] checkout",
        "Selected Git installation does not exist. Using Default",
        "The recommended git tool is: NONE",
        "No credentials specified",
        "Cloning the remote Git repository",
        f"Cloning repository {url}",
        f" > git init {workspace} # timeout=10",
        f"Fetching upstream changes from {url}",
        " > git --version # timeout=10",
        f" > git --version # '{git_version}'",
        f" > git fetch --tags --force --progress -- {url} +refs/heads/*:refs/remotes/origin/* # timeout=10",
        f" > git config remote.origin.url {url} # timeout=10",
        " > git config --add remote.origin.fetch +refs/heads/*:refs/remotes/origin/* # timeout=10",
        "Avoid second fetch",
        " > git rev-parse refs/remotes/origin/main^{commit} # timeout=10",
        f"Checking out Revision {sha} (refs/remotes/origin/main)",
        " > git config core.sparsecheckout # timeout=10",
        f" > git checkout -f {sha} # timeout=10",
        f'Commit message: "{message}"',
        "First time build. Skipping changelog.",
        "[Pipeline] }",
        "[Pipeline] // stage",
    ]


def jenkins_sh(workspace: Path, env: dict[str, str], command: str, tmp: Path, wrap=None) -> tuple[int, str]:
    """Jenkins' `sh` step runs the script with `sh -xe` (dash here, as on Debian agents)."""
    script = tmp / "durable" / "script.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(command + "\n")
    cmd = ["sh", "-xe", str(script)]
    if wrap:
        cmd = wrap(cmd)
    code, out = run(cmd, cwd=workspace, env=env)
    return code, out.decode("utf-8", errors="replace")


def build_jenkins_gcc(tmp: Path) -> dict:
    message = "csv: keep the parsed values next to the fields"
    origin, sha = make_origin(tmp, "csvstat", C_PROJECT, message, "2024-05-14T15:30:12Z")
    ws = tmp / "workspace" / "demo"
    env = base_env(tmp / "home")
    run(["git", "clone", "-q", str(origin), str(ws)], cwd=tmp, env=env, check=True)
    _, gv = run(["git", "--version"], cwd=tmp, env=env)
    code, out = jenkins_sh(ws, env, "make", tmp)
    if code == 0:
        raise RuntimeError("make was expected to fail")
    out = Scrubber({str(ws): "/var/lib/jenkins/workspace/demo", str(tmp): "/tmp"})(out)
    url = "https://git.example.com/demo/csvstat.git"
    lines = [
        "Started by user Demo Admin",
        f"Obtained Jenkinsfile from git {url}",
        "Running in Durability level: MAX_SURVIVABILITY",
        "[Pipeline] Start of Pipeline",
        "[Pipeline] node",
        "Running on agent-1 in /var/lib/jenkins/workspace/demo",
        "[Pipeline] {",
        *jenkins_checkout(url, "/var/lib/jenkins/workspace/demo", sha, message, gv.decode().strip()),
        "[Pipeline] withEnv",
        "[Pipeline] {",
        "[Pipeline] stage",
        "[Pipeline] { (Build)",
        "[Pipeline] sh",
    ]
    text = "\n".join(lines) + "\n" + out
    lines = [
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] stage",
        "[Pipeline] { (Test)",
        'Stage "Test" skipped due to earlier failure(s)',
        "[Pipeline] getContext",
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] }",
        "[Pipeline] // withEnv",
        "[Pipeline] }",
        "[Pipeline] // node",
        "[Pipeline] End of Pipeline",
        f"ERROR: script returned exit code {code}",
        "Finished: FAILURE",
    ]
    text += "\n".join(lines) + "\n"
    d = HERE / "jenkins-gcc-compile-error"
    d.mkdir(exist_ok=True)
    write_out(d / "consoleText", text)
    return {"exit": code}


def memory_cgroup(tmp: Path, limit: int):
    """Create a memory cgroup (v1 or v2) so the kernel OOM killer does the kill.
    Returns (path, cleanup) or (None, None) when not possible."""
    try:
        rel = ""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hier, ctrls, path = line.split(":", 2)
            if "memory" in ctrls.split(","):
                base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
                cg = base / f"cimedic-oom-{os.getpid()}"
                cg.mkdir()
                (cg / "memory.limit_in_bytes").write_text(str(limit))
                return cg, cg.rmdir
            if hier == "0" and not ctrls:
                rel = path
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        if (base / "cgroup.controllers").exists() and "memory" in (base / "cgroup.subtree_control").read_text():
            cg = base / f"cimedic-oom-{os.getpid()}"
            cg.mkdir()
            (cg / "memory.max").write_text(str(limit))
            (cg / "memory.swap.max").write_text("0") if (cg / "memory.swap.max").exists() else None
            return cg, cg.rmdir
    except OSError:
        pass
    return None, None


def watchdog_kill(cmd: list[str], cwd: Path, env: dict[str, str], limit: int) -> tuple[int, bytes]:
    """Fallback when no memory cgroup can be made: SIGKILL the biggest process of
    the tree once its RSS passes `limit`, like the OOM killer would."""
    proc = subprocess.Popen(
        cmd, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stdout.read1(65536), b"")))
    reader.start()
    while proc.poll() is None:
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                status = (pid_dir / "status").read_text()
                ppid = int(re.search(r"PPid:\s+(\d+)", status).group(1))
                rss = re.search(r"VmRSS:\s+(\d+) kB", status)
            except (OSError, AttributeError):
                continue
            if ppid == proc.pid and rss and int(rss.group(1)) * 1024 > limit:
                os.kill(int(pid_dir.name), signal.SIGKILL)
        time.sleep(0.02)
    reader.join()
    return proc.returncode, b"".join(chunks)


def build_jenkins_oom(tmp: Path) -> dict:
    message = "index: keep all shard vectors for the final merge"
    origin, sha = make_origin(tmp, "search-index", INDEX_PROJECT, message, "2024-05-14T16:02:44Z")
    ws = tmp / "workspace" / "search-index"
    env = base_env(tmp / "home")
    run(["git", "clone", "-q", str(origin), str(ws)], cwd=tmp, env=env, check=True)
    subprocess.run([sys.executable, "-m", "venv", str(ws / ".venv")], check=True)
    _, gv = run(["git", "--version"], cwd=tmp, env=env)
    scrub = Scrubber({str(ws): "/var/lib/jenkins/workspace/search-index", str(tmp): "/tmp"})

    code1, out1 = jenkins_sh(ws, env, ".venv/bin/pip install -r requirements.txt", tmp)
    if code1 != 0:
        raise RuntimeError(out1)
    limit = 256 * 2**20
    cg, cleanup = memory_cgroup(tmp, limit)
    build_cmd = ".venv/bin/python scripts/build_index.py --shards 40"
    script = tmp / "durable" / "script.sh"
    script.write_text(build_cmd + "\n")
    if cg is not None:
        procs = cg / "cgroup.procs"
        cmd = ["sh", "-c", f'echo $$ > "{procs}" && exec sh -xe "{script}"']
        try:
            code2, raw = run(cmd, cwd=ws, env=env)
        finally:
            time.sleep(0.2)
            cleanup()
        method = "kernel OOM killer (memory cgroup limited to 256 MiB)"
    else:
        code2, raw = watchdog_kill(["sh", "-xe", str(script)], ws, env, limit)
        method = "watchdog SIGKILL at 256 MiB RSS (no memory cgroup available)"
    out2 = raw.decode("utf-8", errors="replace")
    if code2 != 137 or "Killed" not in out2:
        raise RuntimeError(f"expected the build to be killed (137), got {code2}:\n{out2}")

    url = "https://git.example.com/demo/search-index.git"
    head = [
        "Started by timer",
        f"Obtained Jenkinsfile from git {url}",
        "Running in Durability level: MAX_SURVIVABILITY",
        "[Pipeline] Start of Pipeline",
        "[Pipeline] node",
        "Running on agent-2 in /var/lib/jenkins/workspace/search-index",
        "[Pipeline] {",
        *jenkins_checkout(url, "/var/lib/jenkins/workspace/search-index", sha, message, gv.decode().strip()),
        "[Pipeline] withEnv",
        "[Pipeline] {",
        "[Pipeline] stage",
        "[Pipeline] { (Install)",
        "[Pipeline] sh",
    ]
    text = "\n".join(head) + "\n" + scrub(out1)
    text += (
        "\n".join(
            ["[Pipeline] }", "[Pipeline] // stage", "[Pipeline] stage", "[Pipeline] { (Build index)", "[Pipeline] sh"]
        )
        + "\n"
    )
    text += scrub(out2)
    tail = [
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] stage",
        "[Pipeline] { (Publish)",
        'Stage "Publish" skipped due to earlier failure(s)',
        "[Pipeline] getContext",
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] }",
        "[Pipeline] // withEnv",
        "[Pipeline] }",
        "[Pipeline] // node",
        "[Pipeline] End of Pipeline",
        f"ERROR: script returned exit code {code2}",
        "Finished: FAILURE",
    ]
    text += "\n".join(tail) + "\n"
    write_out(HERE / "oom-killed.log", text)
    return {"method": method}


# --------------------------------------------------------------------------
# Checks, summary and README
# --------------------------------------------------------------------------

ROOT_CAUSE = {
    # file (or zip member) -> regex for the first line stating the root cause
    "gha-pytest-failure.zip:1_test.txt": r"Z E\s{3,}",
    "gha-pytest-failure.zip:test/4_Run tests.txt": r"Z E\s{3,}",
    "pytest-junit/console.log": r"^E\s{3,}",
    "jenkins-gcc-compile-error/consoleText": r": error: ",
    "gitlab-pip-dependency.log": r"ERROR: Could not find a version",
    "azure-npm-e404.log": r"code E404",
    "gha-timeout.log": r"has timed out after",
    "javac-compile-error.log.gz": r": error: ",
    "tsc-compile-error.log": r"error TS\d+",
    "oom-killed.log": r"^Killed$",
}


def read_text(spec: str) -> str:
    if ":" in spec:
        zname, member = spec.split(":", 1)
        with zipfile.ZipFile(HERE / zname) as zf:
            return zf.read(member).decode("utf-8")
    path = HERE / spec
    if spec.endswith(".gz"):
        return gzip.decompress(path.read_bytes()).decode("utf-8")
    return path.read_bytes().decode("utf-8")


def first_line(text: str, pattern: str) -> int | None:
    rx = re.compile(pattern)
    for i, line in enumerate(text.split("\n"), 1):
        if rx.search(ANSI_RE.sub("", line)):
            return i
    return None


def summarize() -> list[tuple[str, int, int | None]]:
    """(file, number of '\\n'-terminated lines, 1-based line of the first root-cause line)."""
    rows = []
    for spec, pattern in ROOT_CAUSE.items():
        text = read_text(spec)
        rows.append((spec, text.count("\n"), first_line(text, pattern)))
    return rows


def print_summary() -> None:
    for spec, n_lines, root in summarize():
        print(f"{spec:48s} lines={n_lines:4d} root_cause_line={root}")


def check_no_leaks(tmp_root: Path) -> None:
    needles = [str(tmp_root), tempfile.gettempdir() + "/cimedic-examples"]
    host_re = Scrubber({}).host_re
    blobs = {}
    for name in OUTPUTS:
        if name.endswith(".zip"):
            with zipfile.ZipFile(HERE / name) as zf:
                for m in zf.namelist():
                    blobs[f"{name}:{m}"] = zf.read(m).decode("utf-8")
        else:
            blobs[name] = read_text(name)
    for name, text in blobs.items():
        for needle in needles:
            if needle in text:
                raise RuntimeError(f"{name} still contains machine-specific text {needle!r}")
        if host_re and host_re.search(text):
            raise RuntimeError(f"{name} still contains the host name")


def main() -> int:
    if "--summary" in sys.argv[1:]:
        print_summary()
        return 0
    started = time.time()
    tmp_root = Path(tempfile.mkdtemp(prefix="cimedic-examples-"))
    builders = {
        "gha-pytest": build_gha_pytest,
        "gha-timeout": build_gha_timeout,
        "tsc": build_tsc,
        "gitlab-pip": build_gitlab_pip,
        "gitlab-javac": build_gitlab_javac,
        "azure-npm": build_azure_npm,
        "jenkins-gcc": build_jenkins_gcc,
        "jenkins-oom": build_jenkins_oom,
    }
    results: dict[str, dict] = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = {}
            for name, fn in builders.items():
                d = tmp_root / name
                d.mkdir()
                futures[pool.submit(fn, d)] = name
            for fut in concurrent.futures.as_completed(futures):
                name = futures[fut]
                results[name] = fut.result()
                log(f"built {name} {results[name]}")
        check_no_leaks(tmp_root)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    log(f"done in {time.time() - started:.0f}s; examples/ is {total / 1024:.0f} KiB")
    print_summary()
    print(f"oom-killed.log produced by: {results['jenkins-oom']['method']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
