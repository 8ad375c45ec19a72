"""The report's plots (matplotlib, PNG): live lag over time with fault windows shaded and the runbook's
100 / 500 ms class lines, the lag histogram with the class boundaries, events/s appended, published and
delivered, and open streams and reconnects over time."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.axes import Axes  # noqa: E402

from harness.checks.lag import NORMAL_MS, WARNING_MS  # noqa: E402
from harness.load.phases import Phase  # noqa: E402

__all__ = ["PLOTS", "write_plots"]

PLOTS = {"lag": "lag_over_time.png", "histogram": "lag_histogram.png", "rates": "events_per_second.png",
         "streams": "streams.png"}


def _shade(ax: Axes, phases: Sequence[Phase]) -> None:
    for i, phase in enumerate(p for p in phases if p.name == "fault"):
        ax.axvspan(phase.start_s, phase.end_s, color="tab:red", alpha=0.12, label="fault" if i == 0 else None)


def _class_lines(ax: Axes, vertical: bool = False) -> None:
    line = ax.axvline if vertical else ax.axhline
    line(NORMAL_MS, color="tab:orange", linestyle="--", linewidth=1, label="100 ms: warning")
    line(WARNING_MS, color="tab:red", linestyle="--", linewidth=1, label="500 ms: critical")


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_plots(out: Path, seconds: Sequence[dict[str, Any]], live_lags_ms: Sequence[float],
                phases: Sequence[Phase]) -> dict[str, str]:
    """The PNGs in `out`; returns their file names by plot."""
    t = [row["t"] + 0.5 for row in seconds]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for key, colour in (("p50", "tab:green"), ("p95", "tab:blue"), ("p99", "tab:purple")):
        ax.plot(t, [row[key] for row in seconds], marker=".", color=colour, label=f"{key} live lag")
    _shade(ax, phases)
    _class_lines(ax)
    ax.set(xlabel="seconds from the start of the load", ylabel="ms", title="Live lag per second",
           yscale="symlog", ylim=(0, None))
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, out / PLOTS["lag"])

    fig, ax = plt.subplots(figsize=(9, 3.6))
    if live_lags_ms:
        top = max(max(live_lags_ms), WARNING_MS * 1.2)
        ax.hist(live_lags_ms, bins=[x * top / 120 for x in range(121)], color="tab:blue")
    _class_lines(ax, vertical=True)
    ax.set(xlabel="live lag (ms)", ylabel="frames", title=f"Live lag of {len(live_lags_ms)} frames", yscale="log")
    ax.legend(fontsize=8)
    _save(fig, out / PLOTS["histogram"])

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for key in ("appended", "published", "delivered"):
        ax.plot(t, [row[key] for row in seconds], label=f"{key}/s")
    _shade(ax, phases)
    ax.set(xlabel="seconds from the start of the load", ylabel="events per second", title="Events per second")
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, out / PLOTS["rates"])

    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(t, [row["open_streams"] for row in seconds], label="open streams")
    ax.bar(t, [row["reconnects"] for row in seconds], width=0.8, color="tab:orange", label="reconnects/s")
    _shade(ax, phases)
    ax.set(xlabel="seconds from the start of the load", ylabel="count", title="Open streams and reconnects")
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, out / PLOTS["streams"])
    return dict(PLOTS)
