"""Explanations for people: the token shading and deletion-check table of ``explain.html``, and the printed table."""

from __future__ import annotations

import html
from typing import Any

from lamina.pages import table_html


def tokens_html(explained: dict[str, Any], rows: int = 20) -> str:
    """The first rows' text columns, each token shaded by its attribution (red: raises the score, blue: lowers)."""
    out = [f"<p>Integrated Gradients per token of {html.escape(explained['score'])}: red raises it, blue lowers "
           "it.</p>"]
    for r in explained["explanations"][:rows]:
        for column, found in r.get("tokens", {}).items():
            values = found["attributions"]
            top = max((abs(v) for v in values), default=0.0) or 1.0
            spans = "".join(
                f'<span title="{v:+.4f}" style="background:rgba({"220,50,47" if v > 0 else "38,139,210"},'
                f'{abs(v) / top:.2f});padding:0 2px;margin:1px">{html.escape(tok)}</span> '
                for tok, v in zip(found["tokens"], values))
            out.append(f"<p><b>row {r['row']}</b>, {html.escape(column)}: predicted "
                       f"{html.escape(str(r['prediction']))} ({r['score']:.3f})<br>{spans}</p>")
    return "\n".join(out)


def faithfulness_html(check: dict[str, Any]) -> str:
    return table_html([check["metric"], "value"], [
        ["original", check["original"]], [f"top-attributed {check['deleted']} deleted", check["top_deleted"]],
        [f"random {check['deleted']} deleted", check["random_deleted"]]])


def print_explanations(numbers: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 100))
    table = Table(title=f"mean |attribution| of {numbers['score']} ({len(numbers['explanations'])} rows)",
                  title_justify="left")
    table.add_column("column")
    table.add_column("mean |IG|", justify="right")
    if numbers.get("permutation"):
        table.add_column(f"permutation ({numbers['permutation']['metric']} drop)", justify="right")
    for column, value in sorted(numbers["global"].items(), key=lambda kv: -kv[1])[:20]:
        extra = [f"{numbers['permutation']['importance'][column]:.4f}"] if numbers.get("permutation") else []
        table.add_row(column, f"{value:.4f}", *extra)
    console.print(table)
    check = numbers.get("faithfulness")
    if check:
        console.print(f"deletion check ({check['deleted']}): {check['metric']} {check['original']:.4f} → "
                      f"{check['top_deleted']:.4f} top-attributed deleted, {check['random_deleted']:.4f} random deleted")
