"""Self-contained HTML pieces (no scripts, nothing fetched) shared by explain, the report and the types' own report
sections: a page of sections, a table, an embedded PNG, a paragraph."""

from __future__ import annotations

import html
from typing import Any

from lamina import plots


def html_page(title: str, sections: list[tuple[str, str]]) -> str:
    """A self-contained page: ``sections`` are (heading, HTML body)."""
    body = "\n".join(f'<section id="{html.escape(h.lower().replace(" ", "-"))}"><h2>{html.escape(h)}</h2>{b}</section>'
                     for h, b in sections)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html.escape(title) +
            "</title><link rel=\"icon\" href=\"data:,\"><style>body{font-family:system-ui,sans-serif;max-width:1100px;"
            "margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px "
            "solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:"
            "left}img{max-width:100%;display:block;margin:.5em 0}section{margin-bottom:2em}</style></head><body><h1>" +
            html.escape(title) + "</h1>\n" + body + "\n</body></html>")


def table_html(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return html.escape(f"{v:.4f}" if isinstance(v, float) else str(v))

    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" +
            "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows) + "</table>")


def img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{plots.data_uri(data)}">'


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def heading(text: str) -> str:
    return f"<h3>{html.escape(text)}</h3>"
