"""A real, bounded Locust run against a local HTTP server, judged by ``matchday gate --locust-csv``.

Checks that the gate reads the CSV files the installed Locust actually writes. Traffic goes to
127.0.0.1 only; the run stops itself after a few seconds; both processes are ours and are ended
by process group even if the test fails.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.processes import stop_group

pytestmark = pytest.mark.e2e

LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Probe(FastHttpUser):
    wait_time = constant(0.05)

    @task(3)
    def ok(self):
        self.client.get("/", name="fetch_odds")

    @task(1)
    def missing(self):
        self.client.get("/missing", name="place_bet")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("odds")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the local HTTP server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)


def test_gate_judges_a_real_locust_run(tmp_path: Path, http_server: str):
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix = tmp_path / "out" / "probe"
    prefix.parent.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host",
         http_server, "-u", "4", "-r", "4", "-t", "6s", "--csv", str(prefix),
         "--csv-full-history", "--only-summary", "--loglevel", "WARNING"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=90)
    finally:
        stop_group(proc)
    assert Path(f"{prefix}_stats_history.csv").exists(), output

    budgets = tmp_path / "budgets.yaml"
    budgets.write_text('budgets:\n  fetch_odds: ["p(95)<500", "error_rate<0.01"]\n')
    cli = [sys.executable, "-m", "matchday", "gate", "--locust-csv", str(prefix),
           "--budgets", str(budgets)]
    passed = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "fetch_odds" in passed.stdout and "rounds response times" in passed.stdout

    budgets.write_text('budgets:\n  place_bet: ["error_rate<0.5"]\n')  # every /missing is a 404
    failed = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL" in failed.stdout
