"""Reports: a run folder's stored data turned into ``summary.md``, ``report.html`` and ``junit.xml``.

``frames`` reads the run folder (every part optional) and derives pandas frames with pure functions;
``charts`` draws them; ``html``, ``markdown`` and ``junit`` render text from the frames. Only
``build_reports`` writes, so a report can always be rebuilt from the stored data without re-running
(``harness report RUN_DIR``).

The names below are imported on first use, so ``harness``'s argument parser (which imports
``harness.report.cli``) does not pay for pandas and matplotlib.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.report.frames import Frames, ReportError, RunData, build_frames, read_run
    from harness.report.html import render_html
    from harness.report.junit import render_junit
    from harness.report.markdown import render_markdown

OUTPUTS = ("summary.md", "report.html", "junit.xml")
_LAZY = {"Frames": "frames", "ReportError": "frames", "RunData": "frames", "build_frames": "frames",
         "read_run": "frames", "render_html": "html", "render_junit": "junit", "render_markdown": "markdown"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"harness.report.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'harness.report' has no attribute {name!r}")


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically, so a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def build_reports(run_dir: str | Path) -> dict[str, Path]:
    """Rebuild ``summary.md``, ``report.html`` and ``junit.xml`` in ``run_dir`` from its stored data.

    Returns ``{file name: path}`` in that order. Raises ReportError if ``run_dir`` is not a folder; a
    part that is absent or unreadable only leaves its section out.
    """
    from harness.report.frames import build_frames, read_run
    from harness.report.html import render_html
    from harness.report.junit import render_junit
    from harness.report.markdown import render_markdown

    f = build_frames(read_run(run_dir))
    texts = dict(zip(OUTPUTS, (render_markdown(f), render_html(f), render_junit(f)), strict=True))
    written = {}
    for name, text in texts.items():
        path = f.data.path / name
        _write(path, text)
        written[name] = path
    return written


def report_lines(run_dir: str | Path) -> list[str]:
    """Build the three reports of a finished run and say where they are (one line each): what every
    command that produces evidence ends with."""
    return [f"{name}: {path}" for name, path in build_reports(run_dir).items()]


__all__ = ["OUTPUTS", "report_lines", "Frames", "ReportError", "RunData", "build_frames", "build_reports", "read_run", "render_html",
           "render_junit", "render_markdown"]
