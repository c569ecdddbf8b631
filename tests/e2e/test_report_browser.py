"""report.html opened in a real headless Chromium (Debian's package): the verdict table and
every image are there and decoded. The browser is driven over the DevTools protocol on
127.0.0.1 (websockets); it is our process and is ended by process group even if the test fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from conftest import unavailable
from e2e.processes import stop_group
from reports.report import render_report
from scenarios import load_scenario
from simulator.run import simulate

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).parents[1] / "fixtures" / "scenarios"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


@pytest.fixture
def chromium(tmp_path: Path):
    """(DevTools websocket URL of a blank page) of a fresh headless Chromium."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        unavailable("Chromium (Debian package 'chromium')")
    profile = tmp_path / "profile"
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("Chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        yield page["webSocketDebuggerUrl"]
    finally:
        stop_group(proc)


class DevTools:
    """A minimal DevTools-protocol client: send a command, wait for its answer."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def test_report_html_shows_the_verdict_table_and_every_image(tmp_path, chromium):
    run = simulate(load_scenario(FIXTURES / "zone-loss.yaml"), fidelity="flow",
                   out=tmp_path / "run").path
    report = render_report(run)
    with connect(chromium, max_size=None, open_timeout=10) as ws:
        tools = DevTools(ws)
        tools.call("Page.navigate", url=report.html.resolve().as_uri())
        deadline = time.monotonic() + 30
        while tools.evaluate("document.readyState") != "complete":
            assert time.monotonic() < deadline, "the report did not finish loading"
            time.sleep(0.1)
        seen = tools.evaluate("""({
            verdict: document.querySelector('#verdict').textContent,
            rows: Array.from(document.querySelectorAll('#budgets tr')).map(r => r.className),
            images: Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth,
                                                          i.getBoundingClientRect().width])
        })""")
        shot = tools.call("Page.captureScreenshot", format="png")["data"]
    assert "fail" in seen["verdict"]
    assert seen["rows"][1:] == [r.verdict for r in report.verdict.results]
    assert len(seen["images"]) == 6
    for alt, complete, natural, shown in seen["images"]:
        assert complete and natural > 500 and shown > 300, alt  # decoded and laid out
    assert len(shot) > 10_000  # something was painted
