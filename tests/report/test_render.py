"""render_html on hand-made executed notebooks: code hidden, training logs kept out of the page."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from resnetlib.report.render import LOG_TAG, log_path_for, render_html


def _notebook(path, log_cell_outputs):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    nb.cells = [
        new_markdown_cell("# a title"),
        new_code_cell("SECRET_SOURCE = 1", outputs=[new_output("stream", name="stdout", text="params table\n")]),
        new_code_cell("results = experiment.run(params)", metadata={"tags": [LOG_TAG]},
                      outputs=log_cell_outputs),
        new_code_cell("figure()", outputs=[new_output("stream", name="stdout", text="after the log\n")]),
    ]
    nbformat.write(nb, path)
    return path


def _log_lines(n):
    return [new_output("stream", name="stdout", text=f"[cifar_resnet20] it {i}/9 train 50.00%\n") for i in range(n)]


def test_log_output_is_moved_out_of_the_page_and_linked(tmp_path):
    html = tmp_path / "exp.html"
    render_html(_notebook(tmp_path / "exp.ipynb", _log_lines(3)), html)
    page = html.read_text()
    assert "[cifar_resnet20] it" not in page
    assert "params table" in page and "after the log" in page and "a title" in page
    assert "SECRET_SOURCE" not in page
    log = log_path_for(html)
    assert log == tmp_path / "exp.training-log.txt"
    assert log.read_text().count("[cifar_resnet20] it") == 3
    assert 'href="exp.training-log.txt"' in page and "3 lines" in page


def test_a_log_cell_that_raised_keeps_its_traceback(tmp_path):
    error = new_output("error", ename="RuntimeError", evalue="diverged at iteration 7",
                       traceback=["RuntimeError: diverged at iteration 7"])
    html = tmp_path / "exp.failed.html"
    render_html(_notebook(tmp_path / "exp.failed.ipynb", [*_log_lines(2), error]), html)
    page = html.read_text()
    assert "diverged at iteration 7" in page
    assert not log_path_for(html).exists()


def test_a_new_page_without_log_removes_a_stale_log(tmp_path):
    html = tmp_path / "exp.html"
    render_html(_notebook(tmp_path / "exp.ipynb", _log_lines(2)), html)
    assert log_path_for(html).exists()
    render_html(_notebook(tmp_path / "exp.ipynb", []), html)
    assert not log_path_for(html).exists() and "training log" not in html.read_text().lower()
