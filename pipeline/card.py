"""The terminal fit card of `jobfit score`: Rich draws it, in colour only on a terminal
(Rich leaves colour out when stdout is a pipe or a file, and honours NO_COLOR)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .fit import Fit

BAND_STYLE = {"strong": "bold green", "possible": "bold blue", "stretch": "bold yellow", "not a fit": "bold red"}
COMPONENTS = ("required", "preferred", "experience", "education", "pay", "arrangement", "role")


def _evidence(item: dict[str, Any], width: int = 150) -> Text:
    sentence, text = str(item.get("evidence") or ""), str(item.get("text") or "")
    if len(sentence) > width:
        i = sentence.lower().find(text.lower()) if text else -1
        start = max(0, min(i - 40, len(sentence) - width)) if i >= 0 else 0
        sentence = ("…" if start else "") + sentence[start:start + width] + "…"
    out = Text(sentence)
    if text:
        out.highlight_words([text], style="bold underline", case_sensitive=False)
    return out


def print_card(rec: dict[str, Any], fit: Fit, profile_name: str, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    head = Text()
    head.append(f"{fit.score:g}/100 ", style=BAND_STYLE.get(fit.band, "bold"))
    head.append(f"{fit.band}", style=BAND_STYLE.get(fit.band, "bold"))
    head.append(f"  for {profile_name}   role: {rec['role']['id']}")
    cap = fit.components.get("cap")
    if cap is not None:
        head.append(f"   (capped at {cap:g}: {fit.components.get('cap_reason')})")
    comp = Table(show_header=True, box=None, pad_edge=False)
    for col in ("component", "met", "weight", "points"):
        comp.add_column(col, justify="right" if col != "component" else "left")
    for name in COMPONENTS:
        c = fit.components.get(name) or {}
        comp.add_row(name, f"{100 * c.get('fit', 0):.0f}%", f"{c.get('weight', 0):g}", f"{c.get('points', 0):g}")
    comp.add_row("total", "", "", f"{fit.components.get('total_before_cap', fit.score):g}")
    items = Table(show_header=False, box=None, pad_edge=False, expand=True)
    items.add_column(width=2)
    items.add_column(ratio=1)
    for b in fit.blockers:
        items.add_row(Text("!!", style="bold red"), Text.assemble((f"BLOCKER {b['kind']} {b['id']}: ", "bold red"), _evidence(b)))
    for m in fit.met:
        items.add_row(Text("✓", style="green"), Text.assemble((f"{m['kind']} {m['id']} ({m['requirement']})", "green"),
                                                            (f" [{m['note']}]" if m.get("note") else "", "dim"), ": ", _evidence(m)))
    for m in fit.missing:
        items.add_row(Text("✗", style="yellow"), Text.assemble((f"{m['kind']} {m['id']} ({m['requirement']})", "yellow"),
                                                             (f" [{m['note']}]" if m.get("note") else "", "dim"), ": ", _evidence(m)))
    title = rec.get("title") or rec.get("source") or rec["posting_id"]
    body = Table.grid(padding=(0, 0))
    body.add_row(head)
    body.add_row(comp)
    body.add_row(items)
    console.print(Panel(body, title=Text(str(title), style="bold"), title_align="left"))
