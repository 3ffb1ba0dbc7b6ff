#!/usr/bin/env python3
"""Build eval cases 021-040 (Jenkins and Azure DevOps) from REAL failing builds.

Usage:  .venv/bin/python examples/eval_cases/build_cases_b.py [NNN ...]

Every line of tool output (mvn/javac/surefire, gcc/ld, pip, pytest, ruff, npm,
eslint, cargo, node, python) is printed by actually running that tool on a tiny
sample project in a temporary directory.  The CI framing around it (Jenkins
``[Pipeline]`` lines, Azure Pipelines ``##[section]`` lines and timestamps) is
written with the helpers of ``examples/build_examples.py``.  Machine-specific
paths and the host name are replaced by neutral values (see ``Scrubber``).

Expected culprit lines are chosen by a pattern per case (where a human would
point) and computed on the produced file, so they stay right on regeneration.
An existing ``notes:`` key in a case.yaml is kept.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cimedic" / "evals" / "cases"
sys.path.insert(0, str(ROOT / "examples"))
import build_examples as bx  # noqa: E402

VENV_PY = ROOT / ".venv" / "bin" / "python"
JWS = "/var/lib/jenkins/workspace"
AZ_SRC = "/home/vsts/work/1/s"
AZ_TEMP = "/home/vsts/work/_temp"
M2 = str(Path.home() / ".m2" / "repository")


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------


def env_for(tmp: Path, extra: list[Path] | None = None) -> dict[str, str]:
    env = bx.base_env(tmp / "home", extra)
    env["CARGO_HOME"] = str(Path.home() / ".cargo")
    env["RUSTUP_HOME"] = str(Path.home() / ".rustup")
    env["PATH"] = os.pathsep.join([str(Path.home() / ".cargo" / "bin"), env["PATH"]])
    env["MAVEN_OPTS"] = "-Djansi.force=false"
    return env


def run_killed(cmd: list[str], cwd: Path, env: dict[str, str], after: float) -> tuple[int, str]:
    """Run in its own process group; SIGTERM the whole group after `after` seconds
    (what Jenkins' timeout step does to the sh step), SIGKILL 5 s later."""
    proc = subprocess.Popen(
        cmd,
        cwd=str(cwd),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    return proc.returncode, out.decode("utf-8", errors="replace")


def project(tmp: Path, name: str, files: dict[str, str], message: str, when: str) -> tuple[Path, str, str]:
    origin, sha = bx.make_origin(tmp, name, files, message, when)
    ws = tmp / "ws" / name
    env = env_for(tmp)
    bx.run(["git", "clone", "-q", str(origin), str(ws)], cwd=tmp, env=env, check=True)
    _, gv = bx.run(["git", "--version"], cwd=tmp, env=env)
    return ws, sha, gv.decode().strip()


def sh_step(ws: Path, env: dict[str, str], script: str, tmp: Path, shebang: bool = False) -> tuple[int, str]:
    """Jenkins `sh`: `sh -xe script` unless the script has its own #! line."""
    path = tmp / "durable" / "script.sh"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script + "\n")
    cmd = ["bash", str(path)] if shebang else ["sh", "-xe", str(path)]
    code, out = bx.run(cmd, cwd=ws, env=env)
    return code, out.decode("utf-8", errors="replace")


def bash_step(src: Path, env: dict[str, str], script: str, tmp: Path, guid: str) -> tuple[int, str, Path]:
    """Azure CmdLine@2: `bash --noprofile --norc <temp>/<guid>.sh`."""
    temp = tmp / "_temp"
    temp.mkdir(parents=True, exist_ok=True)
    path = temp / f"{guid}.sh"
    path.write_text(script)
    code, out = bx.run(["bash", "--noprofile", "--norc", str(path)], cwd=src, env=env)
    return code, out.decode("utf-8", errors="replace"), temp


# --------------------------------------------------------------------------
# framing
# --------------------------------------------------------------------------


def jenkins_console(
    *,
    job: str,
    sha: str,
    message: str,
    git_version: str,
    stages: list[tuple[str, str, str]],
    skipped: list[str],
    trailer: list[str],
    started: str = "Started by an SCM change",
    agent: str = "agent-1",
    wrap: tuple[list[str], list[str]] | None = None,
) -> str:
    """stages: (stage name, step line such as '[Pipeline] sh', step output)."""
    url = f"https://git.example.com/demo/{job}.git"
    ws = f"{JWS}/{job}"
    out = [
        started,
        f"Obtained Jenkinsfile from git {url}",
        "Running in Durability level: MAX_SURVIVABILITY",
        "[Pipeline] Start of Pipeline",
        "[Pipeline] node",
        f"Running on {agent} in {ws}",
        "[Pipeline] {",
        *bx.jenkins_checkout(url, ws, sha, message, git_version),
        "[Pipeline] withEnv",
        "[Pipeline] {",
    ]
    text = "\n".join(out) + "\n"
    for i, (name, step, output) in enumerate(stages):
        pre = ["[Pipeline] stage", f"[Pipeline] {{ ({name})"]
        post = ["[Pipeline] }", "[Pipeline] // stage"]
        if wrap and i == len(stages) - 1:
            pre += wrap[0]
        text += "\n".join([*pre, *step.split("\n")]) + "\n" + output
        if output and not output.endswith("\n"):
            text += "\n"
        if wrap and i == len(stages) - 1:
            text += "\n".join(wrap[1]) + "\n"
        text += "\n".join(post) + "\n"
    for name in skipped:
        text += (
            "\n".join(
                [
                    "[Pipeline] stage",
                    f"[Pipeline] {{ ({name})",
                    f'Stage "{name}" skipped due to earlier failure(s)',
                    "[Pipeline] getContext",
                    "[Pipeline] }",
                    "[Pipeline] // stage",
                ]
            )
            + "\n"
        )
    text += (
        "\n".join(
            [
                "[Pipeline] }",
                "[Pipeline] // withEnv",
                "[Pipeline] }",
                "[Pipeline] // node",
                "[Pipeline] End of Pipeline",
                *trailer,
            ]
        )
        + "\n"
    )
    return text


def azure_step(
    clock: bx.Clock, name: str, script: str, guid: str, output: str, code: int | None, final: list[str] | None = None
) -> str:
    lines: list[str] = []

    def emit(*texts: str) -> None:
        for t in texts:
            clock.tick()
            lines.append(f"{clock.iso7()} {t}")

    emit(
        f"##[section]Starting: {name}",
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
        *script.rstrip("\n").split("\n"),
        "========================== Starting Command Output ===========================",
        f"[command]/usr/bin/bash --noprofile --norc {AZ_TEMP}/{guid}.sh",
    )
    clock.wait(1.2)
    for line in bx.dotnet_lines(output):
        clock.tick(0.0001, 0.02)
        lines.append(f"{clock.iso7()} {line}")
    clock.wait(0.05)
    if final is None:
        final = [f"##[error]Bash exited with code '{code}'."]
    emit(*final, f"##[section]Finishing: {name}")
    return "".join(line + "\n" for line in lines)


def scrubber(pairs: dict[Path | str, str]) -> bx.Scrubber:
    return bx.Scrubber({str(k): v for k, v in pairs.items()})


# --------------------------------------------------------------------------
# sample projects
# --------------------------------------------------------------------------

POM = """
    <?xml version="1.0" encoding="UTF-8"?>
    <project xmlns="http://maven.apache.org/POM/4.0.0"
             xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
             xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
      <modelVersion>4.0.0</modelVersion>
      <groupId>com.example</groupId>
      <artifactId>{artifact}</artifactId>
      <version>1.3.0-SNAPSHOT</version>
      <properties>
        <maven.compiler.release>17</maven.compiler.release>
        <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
      </properties>
      <dependencies>
        <dependency>
          <groupId>org.junit.jupiter</groupId>
          <artifactId>junit-jupiter</artifactId>
          <version>5.10.2</version>
          <scope>test</scope>
        </dependency>
      </dependencies>
      <build>
        <plugins>
          <plugin>
            <groupId>org.apache.maven.plugins</groupId>
            <artifactId>maven-resources-plugin</artifactId>
            <version>3.3.1</version>
          </plugin>
          <plugin>
            <groupId>org.apache.maven.plugins</groupId>
            <artifactId>maven-compiler-plugin</artifactId>
            <version>3.13.0</version>
          </plugin>
          <plugin>
            <groupId>org.apache.maven.plugins</groupId>
            <artifactId>maven-surefire-plugin</artifactId>
            <version>3.2.5</version>
          </plugin>
        </plugins>
      </build>
    </project>
    """

LEDGER_MAIN = {
    "src/main/java/com/example/ledger/Entry.java": """
        package com.example.ledger;

        import java.math.BigDecimal;

        public record Entry(String account, BigDecimal amount) {
            public boolean isDebit() {
                return amount.signum() < 0;
            }
        }
        """,
    "src/main/java/com/example/ledger/Ledger.java": """
        package com.example.ledger;

        import java.math.BigDecimal;
        import java.math.RoundingMode;
        import java.util.ArrayList;
        import java.util.List;

        public class Ledger {
            private final List<Entry> entries = new ArrayList<>();

            public void post(String account, String amount) {
                entries.add(new Entry(account, new BigDecimal(amount)));
            }

            public BigDecimal balance(String account) {
                return entries.stream()
                        .filter(e -> e.account().equals(account))
                        .map(Entry::amount)
                        .reduce(BigDecimal.ZERO, BigDecimal::add);
            }

            /** Monthly interest, rounded to cents (banker's rounding). */
            public BigDecimal interest(String account, String ratePercent) {
                BigDecimal rate = new BigDecimal(ratePercent).movePointLeft(2);
                return balance(account).multiply(rate).setScale(2, RoundingMode.HALF_UP);
            }
        }
        """,
}

LEDGER_TEST = {
    "src/test/java/com/example/ledger/LedgerTest.java": """
        package com.example.ledger;

        import static org.junit.jupiter.api.Assertions.assertEquals;

        import java.math.BigDecimal;
        import org.junit.jupiter.api.Test;

        class LedgerTest {
            @Test
            void balanceSumsEntries() {
                Ledger l = new Ledger();
                l.post("cash", "100.00");
                l.post("cash", "-30.50");
                assertEquals(new BigDecimal("69.50"), l.balance("cash"));
            }

            @Test
            void interestUsesBankersRounding() {
                Ledger l = new Ledger();
                l.post("savings", "1002.50");
                // 1002.50 * 0.5% = 5.0125 -> 5.01 with HALF_EVEN
                assertEquals(new BigDecimal("5.01"), l.interest("savings", "0.5"));
                l.post("savings", "2.50");
                // 1005.00 * 0.5% = 5.025 -> 5.02 with HALF_EVEN
                assertEquals(new BigDecimal("5.02"), l.interest("savings", "0.5"));
            }

            @Test
            void otherAccountsAreIgnored() {
                Ledger l = new Ledger();
                l.post("cash", "10.00");
                l.post("fees", "-1.00");
                assertEquals(new BigDecimal("10.00"), l.balance("cash"));
            }
        }
        """,
}

MVN = f"mvn -B -o -Dstyle.color=never -Dmaven.repo.local={M2}"


def mvn_scrub(tmp: Path, ws: Path, job: str) -> bx.Scrubber:
    return scrubber(
        {ws: f"{JWS}/{job}", f"-Dmaven.repo.local={M2}": "", M2: "/var/lib/jenkins/.m2/repository", tmp: "/tmp"}
    )


def mvn_script(goals: str) -> str:
    return f"{MVN} {goals}"


# --------------------------------------------------------------------------
# Jenkins cases
# --------------------------------------------------------------------------


def c021(tmp: Path) -> dict:
    files = {"pom.xml": POM.replace("{artifact}", "ledger"), **LEDGER_MAIN}
    files["src/main/java/com/example/ledger/Statement.java"] = """
        package com.example.ledger;

        import java.math.BigDecimal;
        import java.util.List;

        public class Statement {
            private final Ledger ledger;

            public Statement(Ledger ledger) {
                this.ledger = ledger;
            }

            public String line(String account) {
                BigDecimal total = ledger.balanceOf(account);
                return account + ": " + total.toPlainString();
            }

            public String render(List<String> accounts) {
                StringBuilder sb = new StringBuilder();
                for (String a : accounts) {
                    sb.append(line(a)).append('\\n');
                }
                return sb.toString();
            }
        }
        """
    msg = "statement: render one line per account"
    ws, sha, gv = project(tmp, "ledger", files, msg, "2024-05-20T09:12:40Z")
    env = env_for(tmp)
    code, out = sh_step(ws, env, mvn_script("clean compile"), tmp)
    assert code != 0, out
    out = mvn_scrub(tmp, ws, "ledger")(out)
    text = jenkins_console(
        job="ledger",
        sha=sha,
        message=msg,
        git_version=gv,
        stages=[("Build", "[Pipeline] sh", out)],
        skipped=["Test", "Package"],
        trailer=[f"ERROR: script returned exit code {code}", "Finished: FAILURE"],
    )
    return {"consoleText": text}


def _ledger_test_run(tmp: Path, when: str) -> tuple[str, str, dict[str, str]]:
    files = {"pom.xml": POM.replace("{artifact}", "ledger"), **LEDGER_MAIN, **LEDGER_TEST}
    msg = "ledger: monthly interest"
    ws, sha, gv = project(tmp, "ledger", files, msg, when)
    env = env_for(tmp)
    code, out = sh_step(ws, env, mvn_script("verify"), tmp)
    assert code != 0, out
    scrub = mvn_scrub(tmp, ws, "ledger")
    reports = {p.name: scrub(p.read_text()) for p in (ws / "target" / "surefire-reports").glob("TEST-*.xml")}
    return scrub(out), sha, {"gv": gv, "msg": msg, "code": str(code), **reports}


def _ledger_console(out: str, sha: str, meta: dict[str, str], started: str, agent: str) -> str:
    return jenkins_console(
        job="ledger",
        sha=sha,
        message=meta["msg"],
        git_version=meta["gv"],
        started=started,
        agent=agent,
        stages=[("Build & test", "[Pipeline] sh", out)],
        skipped=["Publish"],
        trailer=[f"ERROR: script returned exit code {meta['code']}", "Finished: FAILURE"],
    ).replace(
        "[Pipeline] // stage\n[Pipeline] stage\n[Pipeline] { (Publish)",
        "[Pipeline] // stage\n[Pipeline] stage\n[Pipeline] { (Declarative: Post Actions)\n[Pipeline] junit\n"
        "Recording test results\n[Checks API] No suitable checks publisher found.\n[Pipeline] }\n"
        "[Pipeline] // stage\n[Pipeline] stage\n[Pipeline] { (Publish)",
        1,
    )


def c022(tmp: Path) -> dict:
    out, sha, meta = _ledger_test_run(tmp, "2024-05-20T10:02:11Z")
    files = {k: v for k, v in meta.items() if k.startswith("TEST-")}
    files["consoleText"] = _ledger_console(out, sha, meta, "Started by an SCM change", "agent-1")
    return files


C_LINK = {
    "Makefile": """
        CC ?= gcc
        CFLAGS ?= -O2 -Wall -Wextra -std=c11

        OBJS = main.o crc.o io.o

        fsck-lite: $(OBJS)
        \t$(CC) $(CFLAGS) -o $@ $(OBJS)

        %.o: %.c crc.h io.h
        \t$(CC) $(CFLAGS) -c $< -o $@

        clean:
        \trm -f $(OBJS) fsck-lite
        """,
    "crc.h": """
        #pragma once
        #include <stddef.h>
        #include <stdint.h>
        uint32_t crc32_update(uint32_t crc, const unsigned char *buf, size_t len);
        uint32_t checksum_update(uint32_t crc, const unsigned char *buf, size_t len);
        """,
    "crc.c": """
        #include "crc.h"

        uint32_t crc32_update(uint32_t crc, const unsigned char *buf, size_t len)
        {
            crc = ~crc;
            for (size_t i = 0; i < len; i++) {
                crc ^= buf[i];
                for (int k = 0; k < 8; k++)
                    crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
            }
            return ~crc;
        }
        """,
    "io.h": """
        #pragma once
        #include <stdio.h>
        size_t read_block(FILE *f, unsigned char *buf, size_t cap);
        """,
    "io.c": """
        #include "io.h"

        size_t read_block(FILE *f, unsigned char *buf, size_t cap)
        {
            return fread(buf, 1, cap, f);
        }
        """,
    "main.c": """
        #include <stdio.h>
        #include "crc.h"
        #include "io.h"

        int main(int argc, char **argv)
        {
            unsigned char buf[4096];
            uint32_t crc = 0;
            size_t n;
            FILE *f = argc > 1 ? fopen(argv[1], "rb") : stdin;
            if (!f)
                return 2;
            while ((n = read_block(f, buf, sizeof buf)) > 0)
                crc = checksum_update(crc, buf, n);
            printf("%08x\\n", (unsigned)crc);
            return 0;
        }
        """,
}


def c023(tmp: Path) -> dict:
    msg = "crc: rename checksum_update to crc32_update"
    ws, sha, gv = project(tmp, "fsck-lite", C_LINK, msg, "2024-05-21T08:40:00Z")
    env = env_for(tmp)
    code, out = sh_step(ws, env, "make", tmp)
    assert code != 0, out
    out = scrubber({ws: f"{JWS}/fsck-lite", tmp: "/tmp"})(out)
    text = jenkins_console(
        job="fsck-lite",
        sha=sha,
        message=msg,
        git_version=gv,
        stages=[("Build", "[Pipeline] sh", out)],
        skipped=["Test"],
        trailer=[f"ERROR: script returned exit code {code}", "Finished: FAILURE"],
    )
    return {"consoleText": text}


def py_venv(tmp: Path, ws: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(ws / ".venv")], check=True)


def c024(tmp: Path) -> dict:
    files = {
        "requirements.txt": """
            click==8.1.7
            tabulate==0.9.0
            python-dateutil==2.9.1
            """,
        "report.py": "import click\n",
    }
    msg = "deps: bump python-dateutil"
    ws, sha, gv = project(tmp, "reporting", files, msg, "2024-05-21T11:00:00Z")
    py_venv(tmp, ws)
    env = env_for(tmp)
    code, out = sh_step(ws, env, ".venv/bin/pip install -r requirements.txt", tmp)
    assert code != 0, out
    out = scrubber({ws: f"{JWS}/reporting", tmp: "/tmp"})(out)
    text = jenkins_console(
        job="reporting",
        sha=sha,
        message=msg,
        git_version=gv,
        stages=[("Install", "[Pipeline] sh", out)],
        skipped=["Test", "Report"],
        trailer=[f"ERROR: script returned exit code {code}", "Finished: FAILURE"],
    )
    return {"consoleText": text}


HANG_PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        pythonpath = ["."]
        testpaths = ["tests"]
        """,
    "cache/__init__.py": "",
    "cache/store.py": '''
        """A tiny in-process cache with a refresh lock."""
        import threading


        class Store:
            def __init__(self):
                self._lock = threading.Lock()
                self._data = {}

            def get(self, key, default=None):
                with self._lock:
                    return self._data.get(key, default)

            def put(self, key, value):
                with self._lock:
                    self._data[key] = value

            def refresh(self, loader):
                with self._lock:
                    for key in list(self._data):
                        # loader may call back into get(): re-entrant use of a plain Lock
                        self._data[key] = loader(self, key)
        ''',
    "tests/test_store.py": """
        from cache.store import Store


        def test_put_get():
            s = Store()
            s.put("a", 1)
            assert s.get("a") == 1


        def test_missing_default():
            assert Store().get("x", 5) == 5


        def test_overwrite():
            s = Store()
            s.put("a", 1)
            s.put("a", 2)
            assert s.get("a") == 2


        def test_refresh_with_fallback():
            s = Store()
            s.put("a", 1)
            s.refresh(lambda store, key: store.get(key, 0) + 1)
            assert s.get("a") == 2


        def test_many_keys():
            s = Store()
            for i in range(100):
                s.put(i, i)
            assert s.get(99) == 99
        """,
}


def c025(tmp: Path) -> dict:
    msg = "cache: refresh entries in place"
    ws, sha, gv = project(tmp, "cache-svc", HANG_PROJECT, msg, "2024-05-22T07:30:00Z")
    env = env_for(tmp)
    script = tmp / "durable" / "script.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"{VENV_PY} -m pytest -v -p no:cacheprovider\n")
    code, out = run_killed(["sh", "-xe", str(script)], ws, env, after=6)
    out = scrubber({ws: f"{JWS}/cache-svc", str(VENV_PY): f"{JWS}/cache-svc/.venv/bin/python", tmp: "/tmp"})(out)
    if not out.endswith("\n"):
        out += "\n"
    out += "Cancelling nested steps due to timeout\nSending interrupt signal to process\n"
    out += f"script returned exit code {143 if code < 0 else code}\n"
    text = jenkins_console(
        job="cache-svc",
        sha=sha,
        message=msg,
        git_version=gv,
        stages=[("Unit tests", "[Pipeline] sh", out)],
        skipped=["Package"],
        wrap=(
            ["[Pipeline] timeout", "Timeout set to expire in 10 min", "[Pipeline] {"],
            ["[Pipeline] }", "[Pipeline] // timeout"],
        ),
        trailer=["Timeout has been exceeded", "Finished: ABORTED"],
    )
    return {"consoleText": text}


def c026(tmp: Path) -> dict:
    files = {
        "scripts/build_report.py": '''
            """Aggregate the nightly event dump into per-customer rows."""
            import sys


            def load_events(n):
                # every event is kept as a full dict until the end of the run
                return [{"id": i, "customer": i % 5000, "payload": f"{i:0512d}"} for i in range(n)]


            def main():
                events = load_events(2_000_000)
                per_customer = {}
                for ev in events:
                    per_customer.setdefault(ev["customer"], []).append(ev)
                print(f"{len(per_customer)} customers", file=sys.stderr)


            if __name__ == "__main__":
                main()
            ''',
    }
    msg = "report: keep raw events for the customer breakdown"
    ws, sha, gv = project(tmp, "nightly-report", files, msg, "2024-05-22T02:00:00Z")
    env = env_for(tmp)
    pre = 'echo "building report for $(date -u +%F -d @1716336000)"'
    code, out = sh_step(ws, env, f"{pre}\nulimit -v 400000\npython3 scripts/build_report.py", tmp)
    assert code != 0 and "MemoryError" in out, out
    out = scrubber({ws: f"{JWS}/nightly-report", tmp: "/tmp"})(out)
    text = jenkins_console(
        job="nightly-report",
        sha=sha,
        message=msg,
        git_version=gv,
        started="Started by timer",
        stages=[("Report", "[Pipeline] sh", out)],
        skipped=["Upload"],
        trailer=[f"ERROR: script returned exit code {code}", "Finished: FAILURE"],
    )
    return {"consoleText": text}


def c027(tmp: Path) -> dict:
    files = {
        "pyproject.toml": """
            [project]
            name = "webhooks"
            version = "0.3.0"

            [tool.ruff]
            line-length = 100

            [tool.ruff.lint]
            select = ["E", "F", "B", "I"]
            """,
        "webhooks/__init__.py": "",
        "webhooks/verify.py": """
            import hmac
            import hashlib
            import json


            def verify(secret: bytes, body: bytes, signature: str) -> bool:
                expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
                return hmac.compare_digest(expected, signature)


            def parse(body: bytes, seen=[]):
                event = json.loads(body)
                seen.append(event["id"])
                return event
            """,
        "webhooks/dispatch.py": """
            from webhooks.verify import parse


            def dispatch(body: bytes, handlers: dict) -> None:
                event = parse(body)
                try:
                    handlers[event["type"]](event)
                except KeyError:
                    raise ValueError(f"no handler for {event['type']}")
            """,
    }
    msg = "webhooks: dispatch by event type"
    ws, sha, gv = project(tmp, "webhooks", files, msg, "2024-05-23T13:14:00Z")
    env = env_for(tmp, [ROOT / ".venv" / "bin"])
    code, out = sh_step(ws, env, "ruff --version\nruff check .", tmp)
    assert code != 0, out
    out = scrubber({ws: f"{JWS}/webhooks", tmp: "/tmp"})(out)
    text = jenkins_console(
        job="webhooks",
        sha=sha,
        message=msg,
        git_version=gv,
        stages=[("Lint", "[Pipeline] sh", out)],
        skipped=["Test"],
        trailer=[f"ERROR: script returned exit code {code}", "Finished: FAILURE"],
    )
    return {"consoleText": text}


def c028(tmp: Path) -> dict:
    pom = POM.replace("{artifact}", "ledger").replace(
        "          <scope>test</scope>\n        </dependency>\n",
        "          <scope>test</scope>\n        <dependency>\n"
        "          <groupId>org.junit.jupiter</groupId>\n"
        "          <artifactId>junit-jupiter-params</artifactId>\n"
        "          <version>5.10.2</version>\n"
        "          <scope>test</scope>\n        </dependency>\n",
    )
    files = {"pom.xml": pom, **LEDGER_MAIN, **LEDGER_TEST}
    msg = "test: add junit-jupiter-params"
    ws, sha, gv = project(tmp, "ledger", files, msg, "2024-05-23T15:00:00Z")
    env = env_for(tmp)
    code, out = sh_step(ws, env, mvn_script("verify"), tmp)
    assert code != 0, out
    out = mvn_scrub(tmp, ws, "ledger")(out)
    text = jenkins_console(
        job="ledger",
        sha=sha,
        message=msg,
        git_version=gv,
        stages=[("Build & test", "[Pipeline] sh", out)],
        skipped=["Publish"],
        trailer=[f"ERROR: script returned exit code {code}", "Finished: FAILURE"],
    )
    return {"consoleText": text}


def c029(tmp: Path) -> dict:
    files = {
        "build.json": """
            {
              "product": "meterd",
              "version": "2.4.0"
              "channel": "stable"
            }
            """,
        "tools/gen_version.py": '''
            """Write include/version.h from build.json."""
            import json
            import sys

            with open(sys.argv[1]) as f:
                info = json.load(f)
            print("#pragma once")
            print(f'#define BUILD_PRODUCT "{info["product"]}"')
            print(f'#define BUILD_VERSION "{info["version"]}"')
            ''',
        "include/.keep": "",
        "Makefile": """
            CFLAGS ?= -O2 -Wall -Iinclude

            meterd: main.o meter.o
            \t$(CC) $(CFLAGS) -o $@ $^

            %.o: src/%.c
            \t$(CC) $(CFLAGS) -c $< -o $@
            """,
        "src/meter.c": """
            #include <stdio.h>

            /* deliberately old-style to keep the -Wall noise of the real project */
            int meter_read(const char *path, double *out)
            {
                FILE *f = fopen(path, "r");
                int unused_status;
                if (!f)
                    return -1;
                int n = fscanf(f, "%lf", out);
                fclose(f);
                return n == 1 ? 0 : -1;
            }
            """,
        "src/main.c": """
            #include <stdio.h>
            #include "version.h"

            int meter_read(const char *path, double *out);

            int main(int argc, char **argv)
            {
                double v;
                if (argc > 1 && argv[1][0] == '-') {
                    printf("%s %s\\n", BUILD_PRODUCT, BUILD_VERSION);
                    return 0;
                }
                if (meter_read(argc > 1 ? argv[1] : "/dev/stdin", &v) != 0) {
                    fprintf(stderr, "error: cannot read meter\\n");
                    return 1;
                }
                printf("%.3f\\n", v);
                return 0;
            }
            """,
    }
    msg = "release: add channel to build.json"
    ws, sha, gv = project(tmp, "meterd", files, msg, "2024-05-24T09:00:00Z")
    env = env_for(tmp)
    script = '#!/bin/bash\necho "== generating version header"\n'
    script += "python3 tools/gen_version.py build.json > include/version.h\n"
    script += 'echo "== compiling"\nmake'
    code, out = sh_step(ws, env, script, tmp, shebang=True)
    assert code != 0, out
    out = scrubber({ws: f"{JWS}/meterd", tmp: "/tmp"})(out)
    text = jenkins_console(
        job="meterd",
        sha=sha,
        message=msg,
        git_version=gv,
        stages=[("Build", "[Pipeline] sh", out)],
        skipped=["Test", "Archive"],
        trailer=[f"ERROR: script returned exit code {code}", "Finished: FAILURE"],
    )
    return {"consoleText": text}


# --------------------------------------------------------------------------
# Azure DevOps cases
# --------------------------------------------------------------------------


def az_clock(seed: str, start: str) -> bx.Clock:
    return bx.Clock(dt.datetime.fromisoformat(start), seed)


def npm_etarget(tmp: Path, seed: str, start: str) -> dict:
    src = tmp / "vsts" / "1" / "s"
    bx.write_tree(
        src,
        {
            "package.json": """
            {
              "name": "checkout-widget",
              "version": "3.2.0",
              "private": true,
              "scripts": {"build": "node build.js"},
              "dependencies": {
                "lodash.debounce": "4.0.8",
                "ms": "^2.1.3",
                "nanoid": "^9.4.2"
              }
            }
            """,
            "build.js": "console.log('build');\n",
        },
    )
    env = env_for(tmp)
    script = "set -e\nnpm install --no-audit --no-fund\nnpm run build\n"
    guid = bx.fake_uuid(seed)
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code != 0, out
    home = tmp / "home"
    stamp = re.search(r"_logs/(\S+?)-debug-0\.log", out)
    pairs: dict[Path | str, str] = {src: AZ_SRC, temp: AZ_TEMP, home: "/home/vsts", tmp: "/tmp"}
    if stamp:
        when = dt.datetime.fromisoformat(start) + dt.timedelta(seconds=4)
        pairs[stamp.group(1)] = when.strftime("%Y-%m-%dT%H_%M_%S_") + "123Z"
    out = scrubber(pairs)(out)
    return {"npm-install.log": azure_step(az_clock(seed, start), "npm install and build", script, guid, out, code)}


def c031(tmp: Path) -> dict:
    return npm_etarget(tmp, "az-npm-etarget", "2024-05-27T08:14:03+00:00")


def c040(tmp: Path) -> dict:
    return npm_etarget(tmp, "az-npm-etarget-rerun", "2024-05-27T09:41:37+00:00")


PY_TEST_PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        pythonpath = ["."]
        testpaths = ["tests"]
        """,
    "slugs/__init__.py": "",
    "slugs/text.py": """
        import re
        import unicodedata


        def slugify(title: str, max_len: int = 40) -> str:
            text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
            text = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
            return text[:max_len]
        """,
    "tests/test_text.py": """
        from slugs.text import slugify


        def test_basic():
            assert slugify("Hello World") == "hello-world"


        def test_accents():
            assert slugify("Crème brûlée") == "creme-brulee"


        def test_truncation_does_not_end_with_dash():
            assert slugify("release notes for the spring edition of 2024", max_len=14) == "release-notes"


        def test_only_symbols():
            assert slugify("!!!") == ""
        """,
}


def c032(tmp: Path) -> dict:
    src = tmp / "vsts" / "1" / "s"
    bx.write_tree(src, PY_TEST_PROJECT)
    env = env_for(tmp, [ROOT / ".venv" / "bin"])
    script = "python -m pytest -p no:cacheprovider --junitxml=test-results/junit.xml\n"
    guid = bx.fake_uuid("az-pytest")
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code != 0, out
    scrub = scrubber(
        {src: AZ_SRC, temp: AZ_TEMP, ROOT / ".venv": "/opt/hostedtoolcache/Python/3.11.7/x64", tmp: "/tmp"}
    )
    xml = scrub((src / "test-results" / "junit.xml").read_text())
    xml = re.sub(r'timestamp="[^"]+"', 'timestamp="2024-05-27T10:20:31.402215+00:00"', xml)
    log = azure_step(az_clock("az-pytest", "2024-05-27T10:20:28+00:00"), "Run tests", script, guid, scrub(out), code)
    return {"Run tests.log": log, "junit.xml": xml}


def c033(tmp: Path) -> dict:
    src = tmp / "vsts" / "1" / "s"
    bx.write_tree(
        src,
        {
            "package.json": """
            {
              "name": "admin-ui",
              "version": "0.9.1",
              "private": true,
              "scripts": {"lint": "eslint src"},
              "devDependencies": {"eslint": "8.57.0"}
            }
            """,
            ".eslintrc.json": """
            {
              "root": true,
              "env": {"browser": true, "es2022": true},
              "parserOptions": {"sourceType": "module"},
              "extends": "eslint:recommended",
              "rules": {"eqeqeq": "error", "no-console": "warn"}
            }
            """,
            "src/cart.js": """
            export function total(items) {
              let sum = 0;
              const currency = 'EUR';
              for (const item of items) {
                if (item.qty == 0) continue;
                sum += item.price * item.qty;
              }
              console.log('total', sum);
              return sum;
            }
            """,
            "src/format.js": """
            export function money(value) {
              return value.toFixed(2) + ' ' + curency;
            }
            """,
        },
    )
    env = env_for(tmp)
    script = "npm install --no-audit --no-fund\nnpm run lint\n"
    guid = bx.fake_uuid("az-eslint")
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code != 0, out
    out = scrubber({src: AZ_SRC, temp: AZ_TEMP, tmp / "home": "/home/vsts", tmp: "/tmp"})(out)
    return {"lint.log": azure_step(az_clock("az-eslint", "2024-05-28T12:00:09+00:00"), "Lint", script, guid, out, code)}


def c034(tmp: Path) -> dict:
    src = tmp / "vsts" / "1" / "s"
    bx.write_tree(
        src,
        {
            "Cargo.toml": """
            [package]
            name = "tally"
            version = "0.2.0"
            edition = "2021"

            [dependencies]
            """,
            "src/main.rs": """
            mod parse;

            fn main() {
                let input = std::env::args().nth(1).unwrap_or_default();
                let total: u64 = parse::sum_counts(&input);
                println!("{total}");
            }
            """,
            "src/parse.rs": """
            /// Sum the counts of a "name=count,name=count" string.
            pub fn sum_counts(input: &str) -> u64 {
                let mut total = 0;
                for pair in input.split(',') {
                    let count = pair.split_once('=').map(|(_, c)| c.trim().parse::<u64>());
                    total += count;
                }
                total
            }
            """,
        },
    )
    env = env_for(tmp)
    script = "cargo build --locked --release\n"
    bx.run(["cargo", "generate-lockfile", "--offline"], cwd=src, env=env, check=True)
    guid = bx.fake_uuid("az-cargo")
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code != 0, out
    out = scrubber({src: AZ_SRC, temp: AZ_TEMP, tmp: "/tmp"})(out)
    return {
        "build.log": azure_step(
            az_clock("az-cargo", "2024-05-28T14:31:50+00:00"), "cargo build", script, guid, out, code
        )
    }


def c035(tmp: Path) -> dict:
    src = tmp / "vsts" / "1" / "s"
    files = dict(HANG_PROJECT)
    files["tests/test_store.py"] = files["tests/test_store.py"].replace(
        "test_refresh_with_fallback", "test_refresh_reads_current_value"
    )
    bx.write_tree(src, files)
    env = env_for(tmp, [ROOT / ".venv" / "bin"])
    script = "timeout 20s python -m pytest -v -p no:cacheprovider\n"
    guid = bx.fake_uuid("az-timeout")
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code == 124, (code, out)
    out = scrubber({src: AZ_SRC, temp: AZ_TEMP, ROOT / ".venv": "/opt/hostedtoolcache/Python/3.11.7/x64", tmp: "/tmp"})(
        out
    )
    clock = az_clock("az-timeout", "2024-05-29T06:02:10+00:00")
    return {"Run tests.log": azure_step(clock, "Run tests", script, guid, out, code)}


def c036(tmp: Path) -> dict:
    src = tmp / "vsts" / "1" / "s"
    bx.write_tree(
        src,
        {
            "package.json": """
            {
              "name": "docs-site",
              "version": "2.0.0",
              "private": true,
              "scripts": {"build": "node --max-old-space-size=48 scripts/build-search-index.js"}
            }
            """,
            "scripts/build-search-index.js": """
            // Build the full-text index of every page in memory before writing it out.
            const pages = [];
            for (let i = 0; ; i++) {
              pages.push({ id: i, title: `page ${i}`, tokens: Array.from({ length: 200 }, (_, k) => `tok${i}-${k}`) });
              if (i % 20000 === 0) console.log(`indexed ${i} pages`);
            }
            """,
        },
    )
    env = env_for(tmp)
    script = "npm run build\n"
    guid = bx.fake_uuid("az-node-heap")
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code != 0 and "heap" in out, out
    out = scrubber({src: AZ_SRC, temp: AZ_TEMP, tmp / "home": "/home/vsts", tmp: "/tmp"})(out)
    out = re.sub(r"\[\d+:0x[0-9a-f]+\]", "[2131:0x6b4c0f0]", out)
    return {
        "build.log": azure_step(
            az_clock("az-node-heap", "2024-05-29T11:45:00+00:00"), "Build docs", script, guid, out, code
        )
    }


def c037(tmp: Path) -> dict:
    src = tmp / "vsts" / "1" / "s"
    bx.write_tree(src, {"requirements.txt": "httpx==0.27.0\nattrs==23.2.0\n"})
    py_venv(tmp, src)
    env = env_for(tmp)
    env["PIP_INDEX_URL"] = "https://pypi-mirror.build.invalid/simple/"
    script = ".venv/bin/pip install -r requirements.txt\n"
    guid = bx.fake_uuid("az-pip-dns")
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code != 0, out
    out = scrubber({src: AZ_SRC, temp: AZ_TEMP, tmp: "/tmp"})(out)
    return {
        "install.log": azure_step(
            az_clock("az-pip-dns", "2024-05-30T07:10:00+00:00"), "Install dependencies", script, guid, out, code
        )
    }


def c038(tmp: Path) -> dict:
    src = tmp / "vsts" / "1" / "s"
    bx.write_tree(
        src,
        {
            "requirements.txt": """
            # runtime
            requests==2.31.0
            idna==3.7
            # pinned because of the legacy proxy (see ops ticket)
            urllib3==1.20
            certifi==2024.2.2
            """,
        },
    )
    py_venv(tmp, src)
    env = env_for(tmp)
    script = ".venv/bin/pip install -r requirements.txt\n"
    guid = bx.fake_uuid("az-pip-conflict")
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code != 0, out
    out = scrubber({src: AZ_SRC, temp: AZ_TEMP, tmp: "/tmp"})(out)
    return {
        "install.log": azure_step(
            az_clock("az-pip-conflict", "2024-05-30T09:00:00+00:00"), "Install dependencies", script, guid, out, code
        )
    }


def c039(tmp: Path) -> dict:
    src = tmp / "vsts" / "1" / "s"
    files = dict(PY_TEST_PROJECT)
    files["tests/test_text.py"] = files["tests/test_text.py"].replace(
        'slugify("release notes for the spring edition of 2024", max_len=13) == "release-notes"',
        'slugify("release notes", max_len=13) == "release-notes"',
    )
    files["config/settings.yaml"] = """
        app:
          name: slugs
          max_len: 40
        storage:
          bucket: slugs-test
          region: eu-west-1
         endpoint: http://localhost:9000
        logging:
          level: INFO
        """
    files["tests/conftest.py"] = """
        import pathlib

        import pytest
        import yaml

        SETTINGS = yaml.safe_load(pathlib.Path("config/settings.yaml").read_text())


        @pytest.fixture
        def settings():
            return SETTINGS
        """
    bx.write_tree(src, files)
    env = env_for(tmp, [ROOT / ".venv" / "bin"])
    script = "python -m pytest -p no:cacheprovider -q\n"
    guid = bx.fake_uuid("az-conftest-yaml")
    code, out, temp = bash_step(src, env, script, tmp, guid)
    assert code != 0, out
    out = scrubber({src: AZ_SRC, temp: AZ_TEMP, ROOT / ".venv": "/opt/hostedtoolcache/Python/3.11.7/x64", tmp: "/tmp"})(
        out
    )
    return {
        "Run tests.log": azure_step(
            az_clock("az-conftest-yaml", "2024-05-30T13:22:05+00:00"), "Run tests", script, guid, out, code
        )
    }


# --------------------------------------------------------------------------
# Jenkins: the noisy Maven test case (030) is a Maven run where passing tests log
# ERROR lines and stack traces of an expected ConnectException.
# --------------------------------------------------------------------------


def c030_noisy(tmp: Path) -> dict:
    files = {"pom.xml": POM.replace("{artifact}", "payments"), **LEDGER_MAIN}
    files["src/main/java/com/example/ledger/PaymentClient.java"] = """
        package com.example.ledger;

        import java.io.IOException;
        import java.net.InetSocketAddress;
        import java.net.Socket;

        public class PaymentClient {
            private final int attempts;

            public PaymentClient(int attempts) {
                this.attempts = attempts;
            }

            /** Try to reach the gateway; log every failure, return false when all attempts fail. */
            public boolean ping(String host, int port) {
                for (int i = 1; i <= attempts; i++) {
                    try (Socket s = new Socket()) {
                        s.connect(new InetSocketAddress(host, port), 200);
                        return true;
                    } catch (IOException e) {
                        System.out.println("ERROR PaymentClient - gateway " + host + ":" + port
                                + " unreachable (attempt " + i + "/" + attempts + ")");
                        e.printStackTrace(System.out);
                    }
                }
                System.out.println("ERROR PaymentClient - giving up, switching to offline queue");
                return false;
            }
        }
        """
    files["src/test/java/com/example/ledger/PaymentClientTest.java"] = """
        package com.example.ledger;

        import static org.junit.jupiter.api.Assertions.assertFalse;

        import org.junit.jupiter.api.Test;

        class PaymentClientTest {
            @Test
            void unreachableGatewayFallsBackToOfflineQueue() {
                assertFalse(new PaymentClient(2).ping("127.0.0.1", 9));
            }
        }
        """
    files.update(LEDGER_TEST)
    msg = "payments: retry the gateway before queueing"
    ws, sha, gv = project(tmp, "payments", files, msg, "2024-05-24T16:45:00Z")
    env = env_for(tmp)
    code, out = sh_step(ws, env, mvn_script("verify"), tmp)
    assert code != 0, out
    out = mvn_scrub(tmp, ws, "payments")(out)
    text = jenkins_console(
        job="payments",
        sha=sha,
        message=msg,
        git_version=gv,
        stages=[("Build & test", "[Pipeline] sh", out)],
        skipped=["Deploy to staging"],
        trailer=[f"ERROR: script returned exit code {code}", "Finished: FAILURE"],
    )
    return {"consoleText": text}


# --------------------------------------------------------------------------
# case table
# --------------------------------------------------------------------------

J = "wrapped in the Jenkins consoleText layout by examples/eval_cases/build_cases_b.py"
A = "wrapped in the Azure Pipelines CmdLine@2 step-log layout by examples/eval_cases/build_cases_b.py"

# Each: builder, platform, tags, input (relative to recorded/), category, provenance,
# lines = {file: [(start_pattern, end_pattern or None), ...]}, cause keywords, actions ok/forbidden,
# same_failure_as.
CASE_DEFS: dict[str, dict] = {
    "021_jenkins_javac_symbol": dict(
        build=c021,
        platform="jenkins",
        tags=["easy", "compile", "java", "maven"],
        input="consoleText",
        category="compile",
        provenance="produced: `mvn -B -o clean compile` (Maven 3.8.7, maven-compiler-plugin 3.13.0, OpenJDK 17.0.15) "
        "run by `sh -xe` on a Java project calling a method that does not exist",
        lines={"consoleText": [(r"^\[ERROR\] /.*Statement\.java:\[\d+,\d+\] cannot find symbol", r"location: ")]},
        keywords=["cannot find symbol", "balanceOf"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "022_jenkins_maven_junit": dict(
        build=c022,
        platform="jenkins",
        tags=["easy", "test", "java", "maven", "junit-xml"],
        input=".",
        category="test",
        provenance="produced: `mvn -B -o verify` (Maven 3.8.7, surefire 3.2.5, JUnit Jupiter 5.10.2, OpenJDK 17.0.15); "
        "the folder holds consoleText and the real surefire TEST-*.xml",
        lines={
            "consoleText": [
                (r"^\[ERROR\] com\.example\.ledger\.LedgerTest\.interestUsesBankersRounding", r"AssertionFailedError")
            ]
        },
        keywords=["interestUsesBankersRounding", "expected: <5.02> but was: <5.03>", "HALF_UP", "rounding"],
        ok=[],
        forbidden=["rollback", "retry"],
    ),
    "023_jenkins_gcc_undefined_reference": dict(
        build=c023,
        platform="jenkins",
        tags=["easy", "compile", "c", "link"],
        input="consoleText",
        category="compile",
        provenance="produced: `make` (GNU Make 4.3, gcc 12.2.0, GNU ld) run by `sh -xe`; a function renamed in "
        "crc.c is still called from main.c",
        lines={"consoleText": [(r"undefined reference to `checksum_update'", r"collect2: error")]},
        keywords=["undefined reference", "checksum_update"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "024_jenkins_pip_missing_version": dict(
        build=c024,
        platform="jenkins",
        tags=["easy", "dependency", "python", "pip"],
        input="consoleText",
        category="dependency",
        provenance="produced: `pip install -r requirements.txt` (pip 23.2.1, Python 3.11.7, live PyPI) with "
        "python-dateutil==2.9.1, a version that does not exist",
        lines={
            "consoleText": [(r"ERROR: Could not find a version that satisfies", r"ERROR: No matching distribution")]
        },
        keywords=["python-dateutil==2.9.1", "No matching distribution", "Could not find a version"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "025_jenkins_timeout_hung_test": dict(
        build=c025,
        platform="jenkins",
        tags=["hard", "timeout", "python", "pytest", "hang", "deadlock"],
        input="consoleText",
        category="timeout",
        provenance="produced: `pytest -v` (pytest 9.2.0, Python 3.11.7) run by `sh -xe`; test_refresh_with_fallback "
        "deadlocks on a non-reentrant threading.Lock; the process group got SIGTERM as Jenkins' timeout step does. "
        "The timeout/abort lines are framing",
        lines={
            "consoleText": [(r"test_refresh_with_fallback", None), (r"^Cancelling nested steps due to timeout", None)]
        },
        keywords=["test_refresh_with_fallback", "timeout", "deadlock", "hang", "hung"],
        ok=[],
        forbidden=["rollback"],
        notes_default="The last test line (no PASSED) is the hung test; pytest printed no summary.",
    ),
    "026_jenkins_ulimit_memoryerror": dict(
        build=c026,
        platform="jenkins",
        tags=["easy", "resource", "python", "memory"],
        input="consoleText",
        category="resource",
        provenance="produced: `ulimit -v 400000; python3 scripts/build_report.py` (Python 3.11.7, dash) run by "
        "`sh -xe`; the script holds 2M dicts in memory and raises MemoryError",
        lines={"consoleText": [(r"^MemoryError", None)]},
        keywords=["MemoryError", "memory"],
        ok=[],
        forbidden=["rollback", "quarantine"],
    ),
    "027_jenkins_ruff_lint": dict(
        build=c027,
        platform="jenkins",
        tags=["easy", "lint", "python", "ruff"],
        input="consoleText",
        category="lint",
        provenance="produced: `ruff check .` (ruff 0.17.6) run by `sh -xe` on a small package with an unsorted "
        "import block, a mutable default argument and raise-without-from",
        lines={"consoleText": [(r"^I001 |I001", None), (r"B006", None), (r"B904", None)]},
        keywords=["I001", "B006", "B904", "mutable data structures", "raise ... from"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "028_jenkins_maven_bad_pom": dict(
        build=c028,
        platform="jenkins",
        tags=["easy", "config", "java", "maven", "xml"],
        input="consoleText",
        category="config",
        provenance="produced: `mvn -B -o verify` (Maven 3.8.7) on a pom.xml whose edit lost a </dependency>",
        lines={"consoleText": [(r"Non-parseable POM", None)]},
        keywords=["Non-parseable POM", "pom.xml", "end tag"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "029_jenkins_bad_json_generated_header": dict(
        build=c029,
        platform="jenkins",
        tags=["hard", "config", "c", "loud-error-not-cause", "json"],
        input="consoleText",
        category="config",
        provenance="produced: a `#!/bin/bash` sh step (no -e) running `python3 tools/gen_version.py build.json > "
        "include/version.h` (Python 3.11.7) then `make` (gcc 12.2.0); build.json misses a comma, the generator "
        "crashes, the empty header makes gcc fail on BUILD_VERSION",
        lines={"consoleText": [(r"^json\.decoder\.JSONDecodeError", None)]},
        keywords=["JSONDecodeError", "build.json", "delimiter"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "030_jenkins_maven_test_noisy_errors": dict(
        build=c030_noisy,
        platform="jenkins",
        tags=["hard", "test", "java", "maven", "misleading-error-words"],
        input="consoleText",
        category="test",
        provenance="produced: `mvn -B -o verify` (Maven 3.8.7, surefire 3.2.5, JUnit 5.10.2, OpenJDK 17.0.15); a "
        "passing test logs `ERROR PaymentClient` lines and java.net.ConnectException stack traces (expected: the "
        "gateway is down on purpose), the real failure is a rounding assertion in LedgerTest",
        lines={
            "consoleText": [
                (r"^\[ERROR\] com\.example\.ledger\.LedgerTest\.interestUsesBankersRounding", r"AssertionFailedError")
            ]
        },
        keywords=["interestUsesBankersRounding", "expected: <5.02> but was: <5.03>", "rounding", "HALF_UP"],
        ok=[],
        forbidden=["rollback", "retry"],
    ),
    "031_azure_npm_etarget": dict(
        build=c031,
        platform="azure-devops",
        tags=["easy", "dependency", "node", "npm"],
        input="npm-install.log",
        category="dependency",
        provenance="produced: `npm install --no-audit --no-fund` (npm 11.19.1, Node 20.20.2, live npm registry) "
        "with nanoid@^9.4.2, a version range nothing matches",
        lines={"npm-install.log": [(r"code ETARGET", r"No matching version found")]},
        keywords=["ETARGET", "nanoid", "No matching version"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "032_azure_pytest_junit": dict(
        build=c032,
        platform="azure-devops",
        tags=["easy", "test", "python", "pytest", "junit-xml"],
        input=".",
        category="test",
        provenance="produced: `python -m pytest --junitxml=test-results/junit.xml` (pytest 9.2.0, Python 3.11.7); "
        "the folder holds the step log and the real JUnit XML",
        lines={"Run tests.log": [(r"^E\s+AssertionError", None)]},
        keywords=["test_truncation_does_not_end_with_dash", "release-notes-", "truncat"],
        ok=[],
        forbidden=["rollback", "retry"],
    ),
    "033_azure_eslint": dict(
        build=c033,
        platform="azure-devops",
        tags=["easy", "lint", "javascript", "eslint", "npm-warn-noise"],
        input="lint.log",
        category="lint",
        provenance="produced: `npm install` then `npm run lint` = `eslint src` (eslint 8.57.0, npm 11.19.1, Node "
        "20.20.2, live npm registry; npm prints deprecation warnings for eslint 8)",
        lines={"lint.log": [(r"src/cart\.js$", r"no-console"), (r"src/format\.js$", r"no-undef")]},
        keywords=["eslint", "no-undef", "curency", "eqeqeq", "no-unused-vars"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "034_azure_cargo_type_error": dict(
        build=c034,
        platform="azure-devops",
        tags=["easy", "compile", "rust", "cargo"],
        input="build.log",
        category="compile",
        provenance="produced: `cargo build --locked --release` (cargo/rustc 1.95.0, no crates) on code adding an "
        "Option<Result<u64, _>> to a u64",
        lines={"build.log": [(r"error\[E0277\]|error\[E0308\]", r"src/parse\.rs:\d+:\d+")]},
        keywords=["E0277", "E0308", "cannot add", "mismatched types", "Option"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "035_azure_timeout_exit_124": dict(
        build=c035,
        platform="azure-devops",
        tags=["hard", "timeout", "python", "pytest", "hang", "exit-124"],
        input="Run tests.log",
        category="timeout",
        provenance="produced: `timeout 20s python -m pytest -v` (coreutils timeout, pytest 9.2.0, Python 3.11.7); "
        "test_refresh_reads_current_value deadlocks, timeout(1) kills pytest, bash exits 124; nothing says "
        "'timeout' except the command and the exit code",
        lines={"Run tests.log": [(r"test_refresh_reads_current_value", None), (r"Bash exited with code '124'", None)]},
        keywords=["test_refresh_reads_current_value", "timeout", "124", "hang", "deadlock"],
        ok=[],
        forbidden=["rollback"],
    ),
    "036_azure_node_heap_oom": dict(
        build=c036,
        platform="azure-devops",
        tags=["easy", "resource", "node", "memory"],
        input="build.log",
        category="resource",
        provenance="produced: `npm run build` = `node --max-old-space-size=48 scripts/build-search-index.js` "
        "(Node 20.20.2, npm 11.19.1); V8 aborts with `JavaScript heap out of memory`",
        lines={"build.log": [(r"FATAL ERROR: .*heap out of memory", None)]},
        keywords=["heap out of memory", "max-old-space-size", "memory"],
        ok=[],
        forbidden=["rollback", "quarantine"],
    ),
    "037_azure_pip_index_dns": dict(
        build=c037,
        platform="azure-devops",
        tags=["hard", "infra", "network", "python", "pip", "looks-like-dependency"],
        input="install.log",
        category="infra",
        provenance="produced: `pip install -r requirements.txt` (pip 23.2.1, Python 3.11.7) with PIP_INDEX_URL "
        "pointing at a package mirror whose name does not resolve; pip retries, then prints the same "
        "`No matching distribution found` it prints for a missing version",
        lines={
            "install.log": [
                (
                    r"WARNING: Retrying .*NameResolutionError|WARNING: Retrying .*Failed to resolve"
                    r"|WARNING: Retrying .*getaddrinfo|WARNING: Retrying",
                    None,
                )
            ]
        },
        keywords=[
            "pypi-mirror.build.invalid",
            "resolve",
            "NameResolutionError",
            "Name or service not known",
            "unreachable",
            "network",
            "DNS",
        ],
        ok=[],
        forbidden=["rollback", "quarantine"],
    ),
    "038_azure_pip_resolution_conflict": dict(
        build=c038,
        platform="azure-devops",
        tags=["hard", "dependency", "python", "pip", "resolver-conflict"],
        input="install.log",
        category="dependency",
        provenance="produced: `pip install -r requirements.txt` (pip 23.2.1, Python 3.11.7, live PyPI); "
        "requests 2.31.0 needs urllib3>=1.21.1 but urllib3==1.20 is pinned (ResolutionImpossible)",
        lines={"install.log": [(r"ERROR: Cannot install", r"requests 2\.31\.0 depends on urllib3")]},
        keywords=["urllib3==1.20", "conflicting dependencies", "ResolutionImpossible", "urllib3"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "039_azure_conftest_bad_yaml": dict(
        build=c039,
        platform="azure-devops",
        tags=["hard", "config", "python", "pytest", "yaml", "conftest"],
        input="Run tests.log",
        category="config",
        provenance="produced: `python -m pytest -q` (pytest 9.2.0, PyYAML 6.0.x, Python 3.11.7); conftest.py loads "
        "config/settings.yaml at import and one key is mis-indented, so pytest stops before collecting any test",
        lines={"Run tests.log": [(r"yaml\.parser\.ParserError|yaml\.scanner\.ScannerError", r"E\s+endpoint: http")]},
        keywords=["settings.yaml", "ParserError", "ScannerError", "yaml", "indent"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
    ),
    "040_azure_npm_etarget_rerun": dict(
        build=c040,
        platform="azure-devops",
        tags=["easy", "dependency", "node", "npm", "rerun"],
        input="npm-install.log",
        category="dependency",
        provenance="produced: the same `npm install` as 031_azure_npm_etarget run again (npm 11.19.1, live npm "
        "registry): a re-run of the same failure with other timestamps",
        lines={"npm-install.log": [(r"code ETARGET", r"No matching version found")]},
        keywords=["ETARGET", "nanoid", "No matching version"],
        ok=[],
        forbidden=["rollback", "quarantine", "retry"],
        same="031_azure_npm_etarget",
    ),
}


def strip_prefix(line: str) -> str:
    line = bx.ANSI_RE.sub("", line)
    return re.sub(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ", "", line)


def find_ranges(text: str, specs: list[tuple[str, str | None]]) -> list[list[int]]:
    lines = [strip_prefix(x) for x in text.split("\n")]
    out = []
    for start_pat, end_pat in specs:
        start = next((i for i, x in enumerate(lines, 1) if re.search(start_pat, x)), None)
        if start is None:
            raise RuntimeError(f"pattern {start_pat!r} not found")
        end = start
        if end_pat:
            end = next((i for i, x in enumerate(lines[start - 1 :], start) if re.search(end_pat, x)), None)
            if end is None or end - start > 40:
                raise RuntimeError(f"end pattern {end_pat!r} not found after line {start}")
        out.append([start, end])
    return sorted(out)


def write_case(cid: str, d: dict, files: dict[str, str], tmp_root: Path) -> None:
    folder = CASES / cid
    old_notes = None
    if (folder / "case.yaml").exists():
        old_notes = (yaml.safe_load((folder / "case.yaml").read_text()) or {}).get("notes")
    if folder.exists():
        shutil.rmtree(folder)
    rec = folder / "recorded"
    rec.mkdir(parents=True)
    for name, text in files.items():
        home = "/home/vsts" if d["platform"] == "azure-devops" else "/var/lib/jenkins"
        text = files[name] = (
            text.replace(f'hostname="{socket.gethostname()}"', 'hostname="ci-runner"')
            .replace(sys.base_prefix + "/lib/python3.11", "/usr/lib/python3.11")
            .replace(str(Path.home()), home)
        )
        if str(tmp_root) in text or "/tmp/cimedic-cases" in text:
            raise RuntimeError(f"{cid}/{name} still contains a temporary path")
        host_re = bx.Scrubber({}).host_re
        if host_re and host_re.search(text):
            raise RuntimeError(f"{cid}/{name} still contains the host name")
        (rec / name).write_bytes(text.encode("utf-8"))
    lines = {name: find_ranges(files[name], specs) for name, specs in d["lines"].items()}
    case = {
        "id": cid,
        "platform": d["platform"],
        "provenance": d["provenance"] + ", " + (J if d["platform"] == "jenkins" else A),
        "tags": d["tags"],
        "input": "recorded" if d["input"] == "." else f"recorded/{d['input']}",
        "expected": {
            "category": d["category"],
            "lines": lines,
            "cause_keywords": d["keywords"],
            "actions_ok": d["ok"],
            "actions_forbidden": d["forbidden"],
        },
        "same_failure_as": d.get("same"),
    }
    notes = old_notes or d.get("notes_default")
    if notes:
        case["notes"] = notes
    (folder / "case.yaml").write_text(
        yaml.safe_dump(case, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)
    )


def main() -> int:
    wanted = sys.argv[1:]
    tmp_root = Path(tempfile.mkdtemp(prefix="cimedic-cases-"))
    failed = []
    try:
        for cid, d in CASE_DEFS.items():
            if wanted and cid[:3] not in wanted:
                continue
            tmp = tmp_root / cid
            tmp.mkdir()
            t0 = time.time()
            try:
                files = d["build"](tmp)
                write_case(cid, d, files, tmp_root)
                print(f"built {cid} in {time.time() - t0:.0f}s", file=sys.stderr)
            except Exception as exc:
                failed.append(cid)
                print(f"FAILED {cid}: {exc!r}"[:3000], file=sys.stderr)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
