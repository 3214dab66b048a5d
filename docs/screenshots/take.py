"""Screenshots of the dashboard's main pages with the demo's data, for docs/ and the README.

    make screenshots        # = .venv/bin/python docs/screenshots/take.py

Runs `heartbeats demo` in a scratch directory (its own store and Temporal database, a known token),
waits until it has seeded everything, then opens each page in Debian's headless Chromium through
Playwright and saves a PNG here. Stops the demo with Ctrl-C (SIGINT) as a person would.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "screenshots-token-0123456789abcdefghijklmn"
READY = "Press Ctrl-C to stop."
WIDTH, HEIGHT = 1280, 900


def start_demo(scratch: Path) -> tuple[subprocess.Popen[str], str]:
    """The running demo and its dashboard's base URL (once it printed that it is ready)."""
    env = {**os.environ, "HEARTBEATS_API_TOKEN": TOKEN}
    shutil.copy(REPO / "temporal-dev.yaml", scratch)  # its database path is relative to the file: the scratch one
    demo = subprocess.Popen([str(Path(sys.executable).parent / "heartbeats"), "demo", "--config",
                             str(scratch / "temporal-dev.yaml")], cwd=scratch, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert demo.stdout is not None
    base = ""
    for line in demo.stdout:
        sys.stdout.write(line)
        found = re.search(r"dashboard:\s+(http://[^/\s]+)/login", line)
        if found:
            base = found.group(1)
        if READY in line:
            return demo, base
    raise SystemExit(f"the demo stopped before it was ready (exit {demo.wait()})")


async def shoot(base: str) -> list[Path]:
    taken = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        await page.goto(f"{base}/login?token={TOKEN}")

        async def save(name: str, path: str | None = None) -> None:
            if path is not None:
                await page.goto(f"{base}{path}")
            await page.wait_for_load_state("networkidle")
            target = HERE / f"{name}.png"
            await page.screenshot(path=str(target), full_page=True)
            taken.append(target)

        await save("attention", "/")
        await save("tenant", "/tenants/demo")
        await save("spend", "/tenants/demo/spend")
        await page.goto(f"{base}/tenants/demo/apps/marketing")
        await page.get_by_role("link", name="marketing/cmo/hourly_kpi").first.click()
        await save("receipts")
        await page.goto(f"{base}/")
        review = page.get_by_role("link", name="review")
        if await review.count():
            await review.first.click()
            await save("shadow")
        runs = page.locator('a[href^="/runs/"]')
        await page.goto(f"{base}/")
        if await runs.count():
            await runs.first.click()
            await page.locator("pre.mermaid svg").wait_for()
            await save("run")
        await browser.close()
    return taken


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="heartbeats-screenshots-") as scratch:
        demo, base = start_demo(Path(scratch))
        try:
            for path in asyncio.run(shoot(base)):
                print(f"saved {path.relative_to(REPO)}")
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()


if __name__ == "__main__":
    main()
