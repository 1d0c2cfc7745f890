"""Headless Chromium for the page tests: load a file with networking off, read back the DOM
after its script ran and every URL the page asked for (Chromium's NetLog), take a screenshot.

Chromium comes from Debian's packages (`apt-get install chromium`; `make browser`). Without
it the browser tests are skipped with that message, except under CI=true where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # networking off: no name resolves
    "--virtual-time-budget=5000",
]


def chromium() -> str:
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    message = "no Chromium: install it with 'make browser' (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Loaded:
    dom: str  # the document after its script ran
    requests: list[str]  # URLs the page itself asked for (file:// ones included)


def load(page: Path, scratch: Path, fragment: str = "") -> Loaded:
    netlog = scratch / f"{page.stem}.netlog.json"
    done = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={scratch / 'profile'}", f"--log-net-log={netlog}",
         "--dump-dom", page.resolve().as_uri() + fragment],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    events = json.loads(netlog.read_text())["events"]
    # The page's requests carry its (opaque, file://) origin as initiator, "null"; the
    # browser's own background requests say "not an origin" or none.
    requests = sorted(
        {
            e["params"]["url"]
            for e in events
            if "url" in e.get("params", {}) and e["params"].get("initiator") == "null"
        }
    )
    return Loaded(done.stdout, requests)


def screenshot(page: Path, png: Path, scratch: Path, size: str = "1400,1000") -> Path:
    subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={scratch / 'profile'}", f"--screenshot={png}",
         f"--window-size={size}", page.resolve().as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return png
