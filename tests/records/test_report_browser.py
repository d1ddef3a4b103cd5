"""report.html as an engineer sees it: a real run's page rendered by headless Chromium, screenshot and DOM."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from hil.records.report import render_report
from tests.helpers import hil_run, make_run_folder, require_tool

# what the top of the page must hold, and the sections below it
KEY_IDS = ("title", "status", "headline", "map", "map-img", "targets", "outcome-words", "refusals", "latency",
           "latency-img", "launchers", "faults", "links", "realtime", "gospa", "timeline", "run")


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    exe = require_tool("chromium", "chromium")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def raid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual-time raid long enough for kills, misses and self-destructs, its report rendered."""
    run = hil_run(tmp_path_factory.mktemp("raid") / "run", "--duration", "42")
    render_report(run)
    return run


@pytest.mark.timeout(300)
def test_screenshot_is_a_page_not_a_blank(raid: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    out = chromium(f"--screenshot={shot}", "--window-size=1400,2400", (raid / "report.html").as_uri(), tmp=tmp_path)
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1400)
    assert pixels.std() > 0.1, "the page looks blank"  # a white page, or one colour, has next to no variance
    top = pixels[:300]  # the status line and the headline tiles: coloured, not only text on white
    assert (np.abs(top[..., 1] - top[..., 0]) > 0.05).mean() > 0.05, "no status colour at the top"
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 500, "only text, no map drawn"
    rows = (pixels < 0.95).any(axis=2).mean(axis=1)
    assert (rows > 0.02).mean() > 0.5, "most of the first screen is empty"


@pytest.mark.timeout(300)
def test_every_key_element_is_in_the_dom(raid: Path, tmp_path: Path) -> None:
    page = (raid / "report.html").read_text()
    # the same page plus a probe that writes what the browser made of it into the DOM
    probe = ("<script>window.addEventListener('load', () => { const b = document.body;"
             " b.setAttribute('data-images', [...document.images].map("
             "i => i.id + ':' + i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight).join(' '));"
             " b.setAttribute('data-ids', [...document.querySelectorAll('[id]')].map(e => e.id).join(' '));"
             " b.setAttribute('data-target-rows', document.querySelectorAll('#targets tbody tr').length); });"
             "</script>")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe + "</body>"))
    out = chromium("--dump-dom", probed.as_uri(), tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    ids = re.search(r'data-ids="([^"]*)"', out.stdout)
    assert ids, "Chromium never reached the load event"
    assert set(KEY_IDS) <= set(ids.group(1).split())
    images = re.search(r'data-images="([^"]*)"', out.stdout)
    assert images
    decoded = images.group(1).split()
    assert {d.split(":")[0] for d in decoded} == {"map-img", "latency-img", "gospa-img", "timeline-img"}
    for d in decoded:
        _, complete, size = d.split(":")
        w, h = (int(v) for v in size.split("x"))
        assert complete == "true" and w > 600 and h > 200, d
    rows = re.search(r'data-target-rows="(\d+)"', out.stdout)
    assert rows and int(rows.group(1)) == 10  # 8 hostiles, the friendly and the neutral


@pytest.mark.timeout(180)
def test_a_synthetic_run_renders_too(tmp_path: Path) -> None:
    """A run folder with none of the newer summary fields (no plant, links, health) still draws a full page."""
    run = make_run_folder(tmp_path / "run")
    shot = tmp_path / "shot.png"
    out = chromium(f"--screenshot={shot}", "--window-size=1400,2400", render_report(run).as_uri(), tmp=tmp_path)
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    assert imread(shot)[..., :3].std() > 0.1
