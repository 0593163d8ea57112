"""Render an executed notebook as a self-contained HTML page with the code hidden.

The notebooks show their effective parameters as a table output, so hiding every input cell (including
papermill's ``injected-parameters`` cell) loses nothing a reader needs. Figures are embedded as base64
PNG by nbconvert; images referenced from markdown cells are embedded too (``embed_images``), so the page
can be moved or mailed without the folder beside it.

Training logs stay out of the page: the outputs of cells tagged ``log-output`` are removed (nbconvert's
``TagRemovePreprocessor``), their text is saved beside the page as ``<page>.training-log.txt``, and a
one-line note links it. A tagged cell that raised keeps its output (the traceback is what a reader needs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["render_html", "write_atomic", "LOG_TAG", "log_path_for"]

#: Cells whose output is a training log (tagged in the notebooks).
LOG_TAG = "log-output"


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and move it into place (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def log_path_for(html_path: str | Path) -> Path:
    """Where the training log of a rendered page is kept: ``NAME.training-log.txt`` beside ``NAME.html``."""
    html_path = Path(html_path)
    return html_path.with_name(f"{html_path.stem}.training-log.txt")


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stream_text(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _log_note(log_path: Path, lines: int) -> str:
    return (
        f'<p style="color:#666">Training log ({lines} lines) kept out of this page: '
        f'<a href="{log_path.name}">{log_path.name}</a>. Each trained net\'s run folder (in the run cache) '
        "holds its config.yaml, environment.json and metrics.csv.</p>"
    )


def _set_aside_logs(nb: Any, log_path: Path) -> None:
    """Save the text of every ``log-output`` cell to ``log_path`` and put a note linking it after the cell.

    A tagged cell with an error output loses its tag, so its traceback stays on the page.
    """
    import nbformat

    texts, at = [], []
    for i, cell in enumerate(nb.cells):
        if LOG_TAG not in _tags(cell):
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            cell.metadata["tags"] = [t for t in _tags(cell) if t != LOG_TAG]
        elif _stream_text(cell):
            texts.append(_stream_text(cell))
            at.append(i)
    if not texts:
        log_path.unlink(missing_ok=True)  # a log of an earlier rendering would be stale
        return
    text = "".join(texts)
    write_atomic(log_path, text)
    for i in reversed(at):
        nb.cells.insert(i + 1, nbformat.v4.new_markdown_cell(_log_note(log_path, text.count("\n"))))


def _exporter():
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_all_outputs_tags = {LOG_TAG}
    return HTMLExporter(
        config=config,
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )


def render_html(ipynb_path: str | Path, html_path: str | Path) -> Path:
    """Write ``ipynb_path`` as HTML to ``html_path`` (inputs, prompts and training logs hidden).

    Written to a temporary file first and moved into place, so an existing page is only replaced by a
    complete one. Returns ``html_path``.
    """
    import nbformat

    ipynb_path, html_path = Path(ipynb_path), Path(html_path)
    nb = nbformat.read(ipynb_path, as_version=4)
    _set_aside_logs(nb, log_path_for(html_path))
    resources = {"metadata": {"name": html_path.stem, "path": str(ipynb_path.parent.resolve())}}
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    return write_atomic(html_path, body)
