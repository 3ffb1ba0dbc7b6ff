"""``cimedic report``: one self-contained HTML page (plus PNGs) about a project's CI health.

Four pictures: the duration trend with anomalies marked, the flake-rate ranking with credible
intervals, failure categories per week, and the DORA keys. matplotlib renders them with the Agg
backend (no screen needed); the PNGs are embedded in the page and also written beside it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from cimedic.tools.anomaly.base import Anomaly
    from cimedic.tools.delivery.dora import DoraReport
    from cimedic.tools.flaky.models import FlakyTest

FLAKY_SHOWN = 15
CATEGORY_COLOURS = {
    "test": "#d62728",
    "compile": "#ff7f0e",
    "dependency": "#9467bd",
    "lint": "#8c564b",
    "infra": "#1f77b4",
    "timeout": "#17becf",
    "resource": "#e377c2",
    "config": "#bcbd22",
    "other": "#7f7f7f",
}


def _figure(width: float = 9.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.grid(alpha=0.3)
    return fig, ax


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def duration_chart(runs: pd.DataFrame, anomalies: Sequence[Anomaly]) -> bytes:
    """Minutes per run over time, one line per job, the rolling median, and anomalies marked."""
    fig, ax = _figure()
    done = runs.dropna(subset=["duration_s", "started_at"]).sort_values("started_at")
    for job, group in list(done.groupby("job"))[:6]:
        minutes = group["duration_s"] / 60.0
        ax.plot(group["started_at"], minutes, ".", alpha=0.35, markersize=3)
        ax.plot(group["started_at"], minutes.rolling(15, min_periods=3).median(), "-", linewidth=1.5, label=str(job))
    marked = [a for a in anomalies if a.metric == "duration_s"]
    if marked:
        ax.scatter(
            [a.at for a in marked],
            [a.observed / 60.0 for a in marked],
            marker="o",
            facecolors="none",
            edgecolors="red",
            s=60,
            label=f"anomaly ({len(marked)})",
        )
    # CI durations vary by factors, not by minutes: a log scale keeps one 12-hour hang from
    # flattening everything else.
    ax.set_yscale("log")
    ax.set_ylabel("minutes (log scale)")
    ax.set_title("Run duration (dots), rolling median (line), anomalies (red circles)")
    if len(ax.get_legend_handles_labels()[0]):
        ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return _png(fig)


def flaky_chart(flaky: Sequence[FlakyTest]) -> bytes:
    """Estimated flake rate with its 95% credible interval, most suspect first."""
    shown = list(flaky)[:FLAKY_SHOWN]
    fig, ax = _figure(height=max(2.0, 0.32 * len(shown) + 1.0))
    if not shown:
        ax.text(0.5, 0.5, "no flaky tests found", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _png(fig)
    names = [t.test if len(t.test) <= 60 else "…" + t.test[-59:] for t in shown][::-1]
    rates = [t.flake_rate * 100 for t in shown][::-1]
    low = [max(0.0, (t.flake_rate - t.interval[0]) * 100) for t in shown][::-1]
    high = [max(0.0, (t.interval[1] - t.flake_rate) * 100) for t in shown][::-1]
    colours = ["#d62728" if t.definitive else "#ff7f0e" for t in shown][::-1]
    ax.barh(names, rates, xerr=[low, high], color=colours, capsize=2)
    ax.set_xlabel("estimated flake rate, % (red: passed and failed on one commit)")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Flaky tests")
    return _png(fig)


def categories_chart(categories: pd.DataFrame) -> bytes:
    """Failed runs per week, stacked by root-cause category."""
    fig, ax = _figure()
    if categories.empty:
        ax.text(0.5, 0.5, "no diagnosed failures yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _png(fig)
    weekly = (
        categories.assign(week=categories["at"].dt.tz_convert(None).dt.to_period("W").dt.start_time)
        .groupby(["week", "category"])
        .size()
        .unstack(fill_value=0)
    )
    bottom = None
    for category in weekly.columns:
        ax.bar(
            weekly.index,
            weekly[category],
            width=5,
            bottom=bottom,
            label=str(category),
            color=CATEGORY_COLOURS.get(str(category), "#333333"),
        )
        bottom = weekly[category] if bottom is None else bottom + weekly[category]
    ax.set_ylabel("failed runs")
    ax.set_title("Failure categories per week")
    ax.legend(fontsize=7, ncol=3)
    fig.autofmt_xdate()
    return _png(fig)


def dora_chart(report: DoraReport) -> bytes:
    from matplotlib.patches import FancyBboxPatch

    fig, _ = _figure(width=9.0, height=2.2)
    fig.clf()
    keys = [
        ("Deployment frequency", report.deployment_frequency),
        ("Lead time for changes", report.lead_time),
        ("Change failure rate", report.change_failure_rate),
        ("Time to restore", report.time_to_restore),
    ]
    band_colours = {"elite": "#2ca02c", "high": "#98df8a", "medium": "#ffbb78", "low": "#ff9896", None: "#dddddd"}
    for i, (title, key) in enumerate(keys):
        ax = fig.add_subplot(1, 4, i + 1)
        ax.set_axis_off()
        ax.add_patch(
            FancyBboxPatch(
                (0.02, 0.05), 0.96, 0.9, boxstyle="round,pad=0.02", color=band_colours[key.band], transform=ax.transAxes
            )
        )
        value = "n/a" if key.value is None else f"{key.value:g}"
        ax.text(0.5, 0.72, title, ha="center", fontsize=8, transform=ax.transAxes)
        ax.text(0.5, 0.42, value, ha="center", fontsize=15, weight="bold", transform=ax.transAxes)
        ax.text(0.5, 0.16, f"{key.unit} · {key.band or 'no data'}", ha="center", fontsize=7, transform=ax.transAxes)
    return _png(fig)


def _img(name: str, data: bytes) -> str:
    return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def write_report(
    project: str,
    runs: pd.DataFrame,
    *,
    flaky: Sequence[FlakyTest],
    anomalies: Sequence[Anomaly],
    dora: DoraReport,
    categories: pd.DataFrame,
    out: Path,
    png_dir: Path | None = None,
) -> list[Path]:
    """Write the page (and the PNGs when ``png_dir`` is given); returns the files written."""
    charts = {
        "durations": duration_chart(runs, anomalies),
        "flaky": flaky_chart(flaky),
        "categories": categories_chart(categories),
        "dora": dora_chart(dora),
    }
    failed = int((runs["status"] == "failure").sum()) if not runs.empty else 0
    span = ""
    if not runs.empty:
        first, last = runs["started_at"].min(), runs["started_at"].max()
        span = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    rows = "".join(
        f"<tr><td>{html.escape(a.at.strftime('%Y-%m-%d %H:%M'))}</td><td>{html.escape(a.job)}</td>"
        f"<td>{html.escape(a.metric)}</td><td>{a.observed:.0f}</td>"
        f"<td>{a.expected_low:.0f}–{a.expected_high:.0f}</td><td>{html.escape(str(a.kind))}</td>"
        f"<td>{html.escape('; '.join(a.likely_causes))}</td></tr>"
        for a in list(anomalies)[:30]
    )
    flaky_rows = "".join(
        f"<tr><td>{html.escape(t.test)}</td><td>{t.flake_rate:.1%}</td><td>{t.failures}/{t.runs}</td>"
        f"<td>{'yes' if t.definitive else ''}</td><td>{t.impact.ci_minutes_wasted:.0f}</td></tr>"
        for t in list(flaky)[:30]
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cimedic report: {html.escape(project)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}}
img{{max-width:100%;border:1px solid #eee;margin:.5em 0}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}}</style></head><body>
<h1>CI health: {html.escape(project)}</h1>
<p>{len(runs)} runs ({failed} failed), {html.escape(span)}. Generated {datetime.now():%Y-%m-%d %H:%M} by cimedic.</p>
<h2>Delivery (DORA, last {(dora.window_end - dora.window_start).days} days; {html.escape(dora.source)})</h2>
{_img("DORA keys", charts["dora"])}
<h2>Run duration</h2>{_img("duration trend", charts["durations"])}
<table><tr><th>when</th><th>job</th><th>metric</th><th>observed</th><th>expected</th><th>kind</th>
<th>likely causes</th></tr>{rows}</table>
<h2>Flaky tests</h2>{_img("flake-rate ranking", charts["flaky"])}
<table><tr><th>test</th><th>flake rate</th><th>failed/runs</th><th>definitive</th><th>CI minutes lost</th></tr>
{flaky_rows}</table>
<h2>Failure categories</h2>{_img("failure categories", charts["categories"])}
</body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    written = [out]
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
        for name, data in charts.items():
            path = png_dir / f"{name}.png"
            path.write_bytes(data)
            written.append(path)
    return written
