"""Render an executed notebook as a self-contained HTML page with the code hidden.

The notebooks show their effective parameters as a table output, so hiding every input cell (including
papermill's ``injected-parameters`` cell) loses nothing a reader needs. Figures are embedded as base64
PNG by nbconvert; images referenced from markdown cells are embedded too (``embed_images``), so the page
can be moved or mailed without the folder beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["render_html"]


def render_html(ipynb_path: str | Path, html_path: str | Path) -> Path:
    """Write ``ipynb_path`` as HTML to ``html_path`` (inputs and prompts hidden); returns the path.

    Written to a temporary file first and moved into place, so an existing page is only replaced by a
    complete one.
    """
    import nbformat
    from nbconvert import HTMLExporter

    ipynb_path, html_path = Path(ipynb_path), Path(html_path)
    nb = nbformat.read(ipynb_path, as_version=4)
    exporter = HTMLExporter(
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    resources = {"metadata": {"name": html_path.stem, "path": str(ipynb_path.parent.resolve())}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = html_path.with_name(f".{html_path.name}.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html_path)
    return html_path
