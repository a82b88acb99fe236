"""The widget's size budgets (SPEC §5): every library page view pays for the loader, every chat
for the panel. Measured gzipped at level 9, as a server or CDN would send them."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from chat.widget import loader_source

STATIC = Path(__file__).resolve().parents[2] / "chat" / "static" / "chat"
WIDGET = STATIC / "widget"
LOADER_BUDGET = 3 * 1024
PANEL_BUDGET = 20 * 1024
# A module's static imports (`from "./x.js"`, over any number of lines) and its on-demand ones
# (`import("./x.js")`).
IMPORTS = re.compile(r'\bfrom\s*"(\.{1,2}/[^"]+)"|\bimport\(\s*"(\.{1,2}/[^"]+)"\s*\)')


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def panel_modules(*, on_demand: bool) -> list[str]:
    """panel.js and every module it imports, followed from module to module wherever they are;
    with ``on_demand`` also what it imports only when needed. Paths relative to chat/static/chat."""
    found: set[Path] = set()
    waiting = [WIDGET / "panel.js"]
    while waiting:
        path = waiting.pop().resolve()
        if path in found:
            continue
        found.add(path)
        for static, dynamic in IMPORTS.findall(path.read_text(encoding="utf-8")):
            if static or on_demand:
                waiting.append(path.parent / (static or dynamic))
    return sorted(path.relative_to(STATIC).as_posix() for path in found)


def sizes(paths: list[str]) -> dict[str, int]:
    return {path: gzipped((STATIC / path).read_bytes()) for path in paths}


def test_the_loader_as_served_with_its_style_sheet_fits_in_3_kb_gzipped() -> None:
    script = gzipped(loader_source().encode())
    sheet = gzipped((WIDGET / "launcher.css").read_bytes())

    assert script + sheet <= LOADER_BUDGET, f"loader {script} + launcher.css {sheet} bytes"


def test_the_budget_follows_every_module_the_panel_imports_wherever_it_lives() -> None:
    assert panel_modules(on_demand=False) == [
        "shared/protocol.js",
        "shared/socket.js",
        "shared/text.js",
        "widget/http.js",
        "widget/link.js",
        "widget/log.js",
        "widget/panel.js",
    ]
    assert panel_modules(on_demand=True) == sorted(
        [*panel_modules(on_demand=False), "shared/share.js"]
    )


def test_the_panels_scripts_and_styles_fit_in_20_kb_gzipped_with_what_it_loads_on_demand() -> None:
    measured = sizes([*panel_modules(on_demand=True), "widget/panel.css"])

    assert sum(measured.values()) <= PANEL_BUDGET, measured
