"""The widget's size budgets (SPEC §5): every library page view pays for the loader, every chat
for the panel. Measured gzipped at level 9, as a server or CDN would send them."""

from __future__ import annotations

import gzip
from pathlib import Path

from chat.widget import loader_source

WIDGET = Path(__file__).resolve().parents[2] / "chat" / "static" / "chat" / "widget"
LOADER_BUDGET = 3 * 1024
PANEL_BUDGET = 20 * 1024
# What the loader fetches itself; everything else in the folder is the panel's.
LOADER_FILES = {"loader.js", "launcher.css"}


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def panel_files() -> list[Path]:
    return sorted(
        path
        for path in WIDGET.iterdir()
        if path.suffix in {".js", ".css"} and path.name not in LOADER_FILES
    )


def test_the_loader_as_served_with_its_style_sheet_fits_in_3_kb_gzipped() -> None:
    script = gzipped(loader_source().encode())
    sheet = gzipped((WIDGET / "launcher.css").read_bytes())

    assert script + sheet <= LOADER_BUDGET, f"loader {script} + launcher.css {sheet} bytes"


def test_the_panels_scripts_and_styles_fit_in_20_kb_gzipped() -> None:
    sizes = {path.name: gzipped(path.read_bytes()) for path in panel_files()}

    assert {"panel.js", "panel.css"} <= set(sizes)
    assert sum(sizes.values()) <= PANEL_BUDGET, sizes


def test_the_panel_needs_no_module_from_outside_its_folder() -> None:
    for path in panel_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("import "):
                assert 'from "./' in line, f"{path.name}: {line}"
