"""Previews never execute anything and escape everything the researcher wrote."""

import json

from egress_review import preview


def test_notebook_is_rendered_from_json_without_running_it():
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["# Results <script>alert(1)</script>"]},
        {"cell_type": "code", "source": "import os; os.system('touch /tmp/pwned')", "outputs": [
            {"output_type": "stream", "text": ["n = 42\n"]},
            {"output_type": "display_data", "data": {"text/html": ["<b onmouseover=x()>bold</b>"]}},
            {"output_type": "execute_result", "data": {"image/png": "iVBORw0KGgo="}},
        ]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    out = preview.notebook_html(json.dumps(nb).encode())
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "n = 42" in out and 'sandbox=""' in out and "data:image/png;base64,iVBORw0KGgo=" in out
    assert "<b onmouseover" not in out.replace("srcdoc=", "")  # only inside the escaped srcdoc


def test_broken_notebook_says_so():
    assert "not valid JSON" in preview.notebook_html(b"{nope")


def test_table_highlights_flagged_cells_by_row_and_column_label():
    df = preview._read_table(b"region,count,rate\nnorth,3,0.1\nsouth,245,0.2\n", ".csv", 10)
    verdict = {"findings": [{"check": "small_cells", "message": "under 10", "cells": [["north", "count"]]}]}
    out = preview.table_html(df, verdict)
    assert out.count('class="flagged"') == 1 and 'title="small_cells: under 10">3</td>' in out


def test_table_cells_are_escaped():
    df = preview._read_table(b"a,b\n<img src=x>,1\n", ".csv", 10)
    assert "<img" not in preview.table_html(df, {})
