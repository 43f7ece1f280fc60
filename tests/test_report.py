"""``report.html``: written by ``lamina train``, one self-contained file (every image embedded), every section there;
and it renders in a real browser (headless Chromium) with no console errors and every image decoded."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import generated_config

import lamina
from lamina.report import write_report

SECTIONS = ["Config", "Data", "Learning curves", "Metrics", "ROC, PR and calibration",
            "Comparison with classical models", "Explanations", "Layer probes"]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, cancer_csv: Path) -> Path:
    folder = tmp_path_factory.mktemp("report")
    config = generated_config(cancer_csv, ["diagnosis"], folder / "config.yaml", epochs=8, patience=3,
                              batch_size=64, name="cancer_report")
    model = lamina.train(config, output_dir=folder / "runs", verbose=False)
    return Path(model.info["run_dir"]) / "report.html"


def test_train_writes_a_self_contained_report(report: Path) -> None:
    assert report.is_file()
    assert not list(report.parent.parent.glob("*.incomplete"))  # the report left no stray folder behind
    page = report.read_text(encoding="utf-8")
    headings = re.findall(r"<h2>([^<]*)</h2>", page)
    assert headings == SECTIONS
    assert "not available" not in page
    sources = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(sources) >= 8 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:|//|file:)', page)  # nothing fetched
    for needle in ("roc_auc", "confusion matrix", "threshold", "Integrated Gradients", "hidden 2", "deletion check",
                   "`lamina compare CONFIG`"):
        assert needle in page, needle


def test_report_from_a_model_directory_and_a_file(report: Path, cancer_csv: Path, tmp_path: Path) -> None:
    target = write_report(report.parent, data=cancer_csv, path=tmp_path / "again.html")
    page = target.read_text(encoding="utf-8")
    assert "ROC" in page and "Layer probes" in page and "not available" not in page
    bare = write_report(report.parent, path=tmp_path / "bare.html")  # no rows: says how to get the rest
    assert "no labelled rows given" in bare.read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report: Path) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is missing: apt-get install chromium (the report must be checked in a real browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                    args=["--headless", "--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking", "--disable-component-update",
                                          "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(report.resolve().as_uri())
            page.wait_for_load_state("load")
            assert page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)") == SECTIONS
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
            assert len(widths) >= 8 and all(w > 0 for w in widths), widths
            assert page.locator("table").count() >= 5
            assert errors == []
        finally:
            browser.close()
