"""Reliability under faults: kill -9 during `lookalike index` and during service writes, a full disk, read-only media.

For every fault the catalogue is reopened and checked: it opens; SQLite's ``integrity_check`` passes; every item
has its vector in the index; a sample of items, searched with their own files, comes back first with score 1.0
(nothing corrupt); nothing committed was lost (the item count never falls across ``index`` runs, which only add;
every add the service acknowledged with a 201 is there after the kill).

- ``index``: ``--trials`` runs of ``lookalike index`` over a folder of ``--images`` images, each killed (SIGKILL) at
  a seeded random moment; the next run resumes the same catalogue; a complete one starts a new catalogue.
- service: ``--rounds`` rounds of ``lookalike serve`` with 4 clients adding images, killed at a random moment.
- disk full: ``lookalike index`` into a catalogue on a 512 KiB tmpfs (a private mount namespace: needs root or
  user namespaces); it must fail with one error line and leave a catalogue that opens and checks.
- read-only media: the catalogue bind-mounted read-only: ``info`` and ``search`` must work, ``add`` must refuse.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _stamp import stamp
from PIL import Image

from lookalike import Catalog
from lookalike.datasets import load_fashion_mnist

CLI = [sys.executable, "-c", "import sys; from lookalike.cli import main; sys.exit(main())"]
API_KEY = "reliability-key-0123456789"


def make_images(folder: Path, n: int, offset: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    pixels = load_fashion_mnist("test").images
    out = []
    for i in range(n):
        path = folder / f"f{offset + i:05d}.png"
        Image.fromarray(pixels[(offset + i) % len(pixels)]).resize((96, 96)).convert("RGB").save(path)
        out.append(path)
    return out


def check(catalog: Path, sample: int, rng: random.Random) -> dict[str, object]:
    """Open and check a catalogue; returns what was found (``opened`` False with the error when it does not)."""
    try:
        with sqlite3.connect(catalog / "catalog.sqlite") as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        with Catalog(catalog, create=False) as cat:
            items = cat.list(limit=10**9)
            indexed = len(cat.vector_index())
            corrupt = 0
            for item in rng.sample(items, min(sample, len(items))):
                hits = cat.search(item.path, k=1) if item.path else []
                if not hits or hits[0].id != item.id and cat.get(hits[0].id).sha256 != item.sha256 \
                        or hits[0].score < 0.9999:
                    corrupt += 1
        return {"opened": True, "integrity": integrity, "items": len(items), "indexed": indexed,
                "corrupt": corrupt + (integrity != "ok") + (indexed != len(items)), "ids": {i.id for i in items}}
    except Exception as err:  # noqa: BLE001 - any failure to open is what this counts
        return {"opened": False, "error": f"{type(err).__name__}: {err}", "corrupt": 0, "items": 0, "ids": set()}


def index_trials(work: Path, args: argparse.Namespace, rng: random.Random) -> dict[str, int]:
    images = work / "images"
    make_images(images, args.images)
    found = {"trials": 0, "failed opens": 0, "lost items": 0, "corrupt items": 0, "completed runs": 0}
    catalog, series, before = work / "cat-0", 0, 0
    for trial in range(args.trials):
        argv = [*CLI, "--catalog", str(catalog), "index", str(images), "--encoder", args.encoder]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, args.kill_within))
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        found["trials"] += 1
        state = check(catalog, 5, rng) if catalog.exists() else {"opened": True, "items": 0, "corrupt": 0}
        found["failed opens"] += not state["opened"]
        found["corrupt items"] += int(state["corrupt"])  # type: ignore[call-overload]
        found["lost items"] += max(0, before - int(state["items"]))  # type: ignore[call-overload]
        before = int(state["items"])  # type: ignore[call-overload]
        if not state["opened"]:
            print(f"  trial {trial}: {state['error']}", flush=True)
        if before == args.images:  # complete: a new catalogue, so that the kills keep landing mid-run
            found["completed runs"] += 1
            series += 1
            catalog, before = work / f"cat-{series}", 0
    return found


def service_rounds(work: Path, args: argparse.Namespace, rng: random.Random) -> dict[str, int]:
    catalog = work / "served"
    Catalog(catalog, args.encoder).close()
    found = {"rounds": 0, "acknowledged adds": 0, "lost acknowledged writes": 0, "failed opens": 0,
             "corrupt items": 0}
    env = {**os.environ, "LOOKALIKE_API_KEY": API_KEY}
    for r in range(args.rounds):
        files = make_images(work / f"round-{r}", 200, offset=1000 + 200 * r)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([*CLI, "--catalog", str(catalog), "serve", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        acked: list[str] = []
        lock = threading.Lock()

        def client(part: list[Path], url: str = url, acked: list[str] = acked, lock: threading.Lock = lock) -> None:
            with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": API_KEY}) as http:
                for path in part:
                    try:
                        response = http.post("/items", files={"image": (path.name, path.read_bytes(), "image/png")},
                                             data={"id": path.stem, "check_duplicates": "false"})
                    except httpx.TransportError:
                        return  # the server is gone
                    if response.status_code == 201:
                        with lock:
                            acked.append(path.stem)

        threads = [threading.Thread(target=client, args=(files[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(1.0, args.kill_within))
        server.send_signal(signal.SIGKILL)
        server.wait()
        for thread in threads:
            thread.join()
        state = check(catalog, 5, rng)
        found["rounds"] += 1
        found["acknowledged adds"] += len(acked)
        found["failed opens"] += not state["opened"]
        found["corrupt items"] += int(state["corrupt"])  # type: ignore[call-overload]
        found["lost acknowledged writes"] += len(set(acked) - state["ids"])  # type: ignore[operator]
    return found


def namespace_run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``sh -c script`` in a private mount namespace (its mounts vanish with it)."""
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *args], capture_output=True, text=True,
                          timeout=600)


def disk_full(work: Path, args: argparse.Namespace) -> dict[str, object]:
    images = work / "images"
    mount = work / "small"
    mount.mkdir()
    checker = (f"import json, random, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
               "from reliability import check; s = check(__import__('pathlib').Path(sys.argv[1]), 5, "
               "random.Random(0)); s.pop('ids'); print(json.dumps(s))")
    script = ('mount -t tmpfs -o size=512k tmpfs "$1" && "$2" -c "$3" --catalog "$1/cat" index "$4" --encoder "$5"; '
              'echo "rc=$?"; "$2" -c "$6" "$1/cat"')
    done = namespace_run(script, str(mount), sys.executable, CLI[2], str(images), args.encoder, checker)
    if "rc=" not in done.stdout:
        return {"ran": False, "why": (done.stderr or done.stdout).strip()[:200]}
    lines = done.stdout.strip().splitlines()
    rc = next(int(line[3:]) for line in lines if line.startswith("rc="))
    state = json.loads(lines[-1])
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    return {"ran": True, "rc": rc, "error lines": len(errors), "error": errors[-1] if errors else "",
            "opened": state["opened"], "items kept": state["items"], "corrupt": state["corrupt"]}


def read_only(work: Path, args: argparse.Namespace) -> dict[str, object]:
    folder = work / "ro"
    make_images(folder / "images", 30)
    with Catalog(folder / "cat", args.encoder) as cat:
        cat.index_folder(folder / "images")
    probe = folder / "images" / "f00003.png"
    script = ('mount --bind -o ro "$1" "$1" && "$2" -c "$3" --catalog "$1/cat" info --json && '
              '"$2" -c "$3" --catalog "$1/cat" search "$4" -k 1; echo "search=$?"; '
              '"$2" -c "$3" --catalog "$1/cat" add "$4" --id again; echo "add=$?"')
    done = namespace_run(script, str(folder), sys.executable, CLI[2], str(probe))
    ok = '"read_only": true' in done.stdout and "search=0" in done.stdout and "f00003.png" in done.stdout
    return {"reads work": ok, "add refused": "add=1" in done.stdout and "read-only" in done.stderr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--encoder", default="efficientnet-lite0")
    parser.add_argument("--kill-within", type=float, default=6.0, help="seconds: the latest moment of a kill")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print("## Reliability under faults (issue 11)\n")
    print(stamp())
    print(f"- encoder {args.encoder}; kills at a seeded random moment up to {args.kill_within:g} s into a run "
          f"(seed {args.seed})\n")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        idx = index_trials(work, args, rng)
        idx_s = time.perf_counter() - started
        started = time.perf_counter()
        svc = service_rounds(work, args, rng)
        svc_s = time.perf_counter() - started
        full = disk_full(work, args)
        ro = read_only(work, args)
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        (f"kill -9 during `lookalike index` of {args.images} images ({idx['completed runs']} runs completed first)",
         idx["trials"], idx["failed opens"], idx["lost items"], idx["corrupt items"], "-", idx_s),
        (f"kill -9 of `lookalike serve` under 4 writing clients ({svc['acknowledged adds']} adds acknowledged)",
         svc["rounds"], svc["failed opens"], "-", svc["corrupt items"], svc["lost acknowledged writes"], svc_s),
    ]
    print("| fault | trials | catalogues that failed to open | lost items | corrupt items | lost acknowledged writes "
          "| seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, trials, opens, lost, corrupt, acked, seconds in rows:
        print(f"| {name} | {trials} | {opens} | {lost} | {corrupt} | {acked} | {seconds:.0f} |")
    print()
    if full["ran"]:
        print(f"- disk full (a 512 KiB tmpfs): `index` exit status {full['rc']}, {full['error lines']} error "
              f"line(s) (`{full['error']}`); the catalogue reopened: {full['opened']}, {full['items kept']} items "
              f"kept, {full['corrupt']} corrupt")
    else:
        print(f"- disk full: not run ({full['why']})")
    print(f"- read-only media (a read-only bind mount): `info` and `search` work: {ro['reads work']}; `add` "
          f"refused with one line: {ro['add refused']}")


if __name__ == "__main__":
    main()
