"""``lookalike serve``: one command starts the API and the web page; writing is never open by accident."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lookalike.cli import main

from .conftest import API_KEY


def test_serve_refuses_without_a_key_or_read_only(photo_catalog: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LOOKALIKE_API_KEY", raising=False)
    assert main(["--catalog", str(photo_catalog), "serve"]) == 1
    err = capsys.readouterr().err
    assert "LOOKALIKE_API_KEY" in err and "--read-only" in err


def test_serve_needs_an_existing_catalogue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--catalog", str(tmp_path / "nothing"), "serve", "--read-only"]) == 1
    assert "no catalogue" in capsys.readouterr().err
    assert not (tmp_path / "nothing" / "catalog.sqlite").exists()


@pytest.mark.slow
@pytest.mark.parametrize("read_only", [True, False])
def test_serve_starts_the_page_and_the_api(photo_catalog: Path, read_only: bool) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "LOOKALIKE_API_KEY"}
    if not read_only:
        env["LOOKALIKE_API_KEY"] = API_KEY
    argv = ["--catalog", str(photo_catalog), "serve", "--port", str(port)] + (["--read-only"] if read_only else [])
    code = "import sys; from lookalike.cli import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline() + proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in banner and "40 items" in banner
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert health.json() == {"status": "ok", "items": 40, "writable": not read_only}
        assert "<title>lookalike</title>" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
