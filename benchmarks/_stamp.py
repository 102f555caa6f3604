"""Provenance stamp printed above every benchmark table: command, commit, machine, date."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            kib = int(f.readline().split()[1])
        return f"{kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "? GiB"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def stamp() -> str:
    """A markdown block naming the command, commit, machine and date of this run."""
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    machine = f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()}, {platform.system()} {platform.machine()}"
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"- command: `{command}`\n- commit: `{_commit()}`\n- machine: {machine}\n"
            f"- python {platform.python_version()}, run {now}\n")


BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "BENCHMARKS.md")


class Report:
    """Prints each line as it comes (a long run shows progress) and keeps it for :func:`write_section`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines).rstrip("\n") + "\n"


def write_section(text: str, path: str = BENCHMARKS) -> None:
    """Put ``text`` into BENCHMARKS.md in place of the section with the same heading (its first line, ``## …``),
    or at the end when there is none. The section runs to the next heading of the same level. The file is
    replaced atomically, so a reader never sees half of it.
    """
    heading = text.splitlines()[0]
    if not heading.startswith("## "):
        raise ValueError(f"a section starts with a '## ' heading. Got {heading!r}.")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    new = text.rstrip("\n").splitlines()
    if heading in lines:
        start = lines.index(heading)
        stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = [""] if stop < len(lines) else []
        lines[start:stop] = new + tail
    else:
        lines += ([""] if lines and lines[-1] else []) + new
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
