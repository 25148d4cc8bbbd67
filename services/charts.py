"""Charts drawn on the server as SVG: no JavaScript library, nothing but markup the page embeds.

Every text that comes from data (plan names, reasons, dates) is escaped here, so the SVG can be
marked safe for the template.
"""
from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

STATUS_FILL = {"succeeded": "#1f7a3f", "partial": "#a15c00", "failed": "#b42318", "interrupted": "#b42318",
               "skipped": "#8a94a3", "running": "#2f5bd3", "queued": "#8a94a3"}


@dataclass(frozen=True)
class Bar:
    label: str        # under the bar (short: a date)
    value: int
    title: str        # the tooltip: everything about the bar in words
    status: str = "succeeded"
    href: str | None = None


def bar_chart(bars: list[Bar], *, title: str, width: int = 720, height: int = 220) -> Markup:
    """A bar chart of ``bars`` left to right; an accessible title and one ``<title>`` per bar."""
    pad_left, pad_bottom, pad_top = 48, 34, 16
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    top = max([b.value for b in bars] + [1])
    slot = plot_w / max(len(bars), 1)
    bar_w = max(2.0, slot * 0.7)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" aria-labelledby="chart-title">',
             f'<title id="chart-title">{escape(title)}</title>']
    # The axis: zero and the maximum.
    base_y = pad_top + plot_h
    parts.append(f'<line x1="{pad_left}" y1="{base_y}" x2="{width - 8}" y2="{base_y}" stroke="#d9dee6"/>')
    parts.append(f'<text x="{pad_left - 6}" y="{pad_top + 4}" text-anchor="end" font-size="11" fill="#5b6473">{top:,}</text>')
    parts.append(f'<text x="{pad_left - 6}" y="{base_y}" text-anchor="end" font-size="11" fill="#5b6473">0</text>')
    label_every = max(1, len(bars) // 10)
    for i, bar in enumerate(bars):
        h = 0 if bar.value <= 0 else max(1.0, plot_h * bar.value / top)
        x = pad_left + i * slot + (slot - bar_w) / 2
        y = base_y - h
        fill = STATUS_FILL.get(bar.status, "#2f5bd3")
        rect = (f'<rect class="bar bar-{escape(bar.status)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{fill}"><title>{escape(bar.title)}</title></rect>')
        if bar.href:
            rect = f'<a href="{escape(bar.href)}">{rect}</a>'
        parts.append(rect)
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base_y + 14}" text-anchor="middle" font-size="10" '
                         f'fill="#5b6473">{escape(bar.label)}</text>')
    if not bars:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13" '
                     f'fill="#5b6473">No runs yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def run_history_chart(runs, *, processed, href=None, plan_name: str = "") -> Markup:
    """Records per run for ``runs`` (oldest first), coloured by status."""
    bars = []
    for run in runs:
        n = processed(run)
        when = run.started_at or run.queued_at
        date = when.strftime("%d %b %H:%M") if when else "—"
        reason = f" — {run.reason}" if run.reason else ""
        bars.append(Bar(label=when.strftime("%d %b") if when else "—", value=n, status=run.status,
                        title=f"Run {run.id} · {date} UTC · {run.status} · {n:,} records{reason}",
                        href=href(run) if href else None))
    name = f" of {plan_name}" if plan_name else ""
    return bar_chart(bars, title=f"Records per run{name}, last {len(bars)} runs")
