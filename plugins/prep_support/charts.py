"""The weekly trend chart: p95 latency per check over the week, and availability per hour (PNG, matplotlib)."""

from __future__ import annotations

import io
import math
from datetime import timedelta

from prep_support.reports import TrendSeries

WIDTH_PX, HEIGHT_PX, DPI = 900, 500, 100


def render_chart(series: TrendSeries, *, title: str, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX,
                 dpi: int = DPI) -> bytes:
    """Two panels sharing the week's time axis: p95 latency per check (ms), and the hourly availability (%)
    of the critical checks. Hours without results are gaps, not zeros. Returns the PNG's bytes."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    from matplotlib import dates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A Figure of its own (not pyplot's global state), so concurrent tasks in one worker cannot mix charts.
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    latency, availability = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    figure.suptitle(title, fontsize=11)
    hours = list(series.hours)

    for check_id, values in sorted(series.p95_ms.items()):
        if any(value is not None for value in values):
            latency.plot(hours, _gaps(values), linewidth=1, label=check_id)
    latency.set_ylabel("p95 latency (ms)")
    highest = max((value for values in series.p95_ms.values() for value in values if value is not None), default=1.0)
    latency.set_ylim(0, highest * 1.4)  # room above the peak for the legend
    latency.grid(True, alpha=0.3)
    if latency.get_legend_handles_labels()[0]:
        latency.legend(fontsize=7, loc="upper left", ncols=2)
    else:
        latency.text(0.5, 0.5, "no latency measured", ha="center", va="center", transform=latency.transAxes)

    points = _gaps(series.availability_pct)
    availability.plot(hours, points, color="tab:green", linewidth=1, drawstyle="steps-post")
    availability.fill_between(hours, points, 100, step="post", color="tab:red", alpha=0.25, linewidth=0)
    lowest = min((value for value in series.availability_pct if value is not None), default=100.0)
    availability.set_ylim(max(0.0, min(lowest, 95.0) - 5), 100.5)
    availability.set_ylabel("availability (%)")
    availability.grid(True, alpha=0.3)
    availability.xaxis.set_major_locator(dates.DayLocator())
    availability.xaxis.set_major_formatter(dates.DateFormatter("%a %d %b"))
    if hours:
        availability.set_xlim(hours[0], hours[-1] + timedelta(hours=1))

    buffer = io.BytesIO()
    # No "Software" metadata: the same series gives the same bytes whatever the matplotlib version.
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _gaps(values: tuple[float | None, ...]) -> list[float]:
    return [math.nan if value is None else value for value in values]
