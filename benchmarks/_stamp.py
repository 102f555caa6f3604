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
