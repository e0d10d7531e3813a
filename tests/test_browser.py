"""Notebook 05's live sliders in a real browser (issue 5): JupyterLab on loopback, the notebook
opened in headless Chromium (Debian's ``chromium``, driven by Playwright), all cells run, a slider
moved with the keyboard, and the image beside it must change.

Needs ``/usr/bin/chromium`` (``make test`` installs Debian's ``chromium`` when it is missing) and
the ``playwright`` Python package (the ``test`` extra). Without them this test fails and says so:
it is part of the suite, not optional."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = os.environ.get("I2S_CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network (no background connections) and running as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def jupyterlab(tmp_path, monkeypatch):
    """A JupyterLab server on 127.0.0.1 serving ``tmp_path``, with notebook 05 in it,
    parameterised by papermill (not executed) for 2 optimiser steps and live sliders."""
    import papermill as pm

    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = tmp_path / "05_applications.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "05_applications.ipynb"), str(nb), prepare_only=True,
                        parameters=dict(model="mini", profile="quick", steps=2, device="cpu", interactive=True,
                                        figures_dir=str(tmp_path / "figures"), results_dir=str(tmp_path / "results")))
    import nbformat

    doc = nbformat.read(nb, as_version=4)  # the kernel to start, so JupyterLab does not ask
    doc.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(doc, nb)
    port, token = _free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyterlab.log"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jcfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "jrt")}
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
             "--ServerApp.open_browser=False", "--allow-root", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
             "jupyterlab.NeverCheckForUpdate"],
            cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log)
        yield f"http://127.0.0.1:{port}/lab/tree/{nb.name}?token={token}", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_notebook05_slider_changes_the_image(jupyterlab, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; `make test` does "
                    "it), or point I2S_CHROMIUM at a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]' (make test does it)")
    url, log = jupyterlab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            try:  # JupyterLab asks which kernel to start: the notebook's own (python3)
                page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=30_000)
            except Exception:  # noqa: BLE001 - no dialog: the kernel started by itself
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000,
                                   state="attached")
            # Run all cells through the Run menu (what a person does).
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            # The morph panel: its λ slider and, below it, its image.
            morph = page.locator(".widget-vbox", has=page.locator(".widget-html", has_text="Morph")).first
            image = morph.locator("img.widget-image").first
            try:
                image.wait_for(timeout=240_000)
            except Exception:
                raise AssertionError(f"the widget image never appeared (screenshot {tmp_path / 'browser.png'}); "
                                     f"JupyterLab log:\n{log.read_text()[-3000:]}")
            # What the image shows (ipywidgets serves it as a blob URL): its pixels, via a canvas.
            shown = ("(img) => { if (!img.complete || !img.naturalWidth) return null;"
                     " const c = document.createElement('canvas'); c.width = img.naturalWidth;"
                     " c.height = img.naturalHeight; c.getContext('2d').drawImage(img, 0, 0);"
                     " return c.toDataURL(); }")
            page.wait_for_function(shown, arg=image.element_handle(), timeout=60_000)
            before = page.evaluate(shown, image.element_handle())
            readout = morph.locator(".widget-slider .widget-readout").first
            assert readout.inner_text().strip() in ("0.50", "0.5")
            handle = morph.locator(".widget-slider .noUi-handle").first
            handle.focus()
            page.keyboard.press("End")  # lambda 0.5 -> 1.0: image A alone
            page.wait_for_function(f"([img, old]) => {{ const now = ({shown})(img); return now && now !== old; }}",
                                   arg=[image.element_handle(), before], timeout=60_000)
            after = page.evaluate(shown, image.element_handle())
            assert readout.inner_text().strip() in ("1.00", "1.0", "1")
            assert after != before
        finally:
            try:  # what the browser showed last, for whoever reads a failure
                page.screenshot(path=str(tmp_path / "browser.png"))
                print(f"screenshot: {tmp_path / 'browser.png'}")
            finally:
                browser.close()
