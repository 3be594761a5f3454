"""INTERGROWTH-21st growth charts with the fetus's point: HC, AC, FL (mm) and EFW (g) by GA.

Curves are the 3rd, 10th, 50th, 90th and 97th centiles computed from
``inference.biometry.intergrowth`` (the same equations that give the report's centiles): normal
size standards μ + zσ for HC/BPD/AC/FL/OFD (14+0–40+0 weeks), the LMS EFW-for-GA standard for
EFW (22+0–40+0 weeks). Rendering uses matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import io
import math
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from inference.biometry.intergrowth import efw_lms, size_mean_sd

CENTILES = (3, 10, 50, 90, 97)
TITLES = {
    "HC": ("Head circumference", "mm", "hc", (14.0, 40.0)),
    "BPD": ("Biparietal diameter", "mm", "bpd", (14.0, 40.0)),
    "AC": ("Abdominal circumference", "mm", "ac", (14.0, 40.0)),
    "FL": ("Femur length", "mm", "fl", (14.0, 40.0)),
    "OFD": ("Occipito-frontal diameter", "mm", "ofd", (14.0, 40.0)),
    "EFW": ("Estimated fetal weight", "g", "efw", (22.0, 40.0)),
}


def centile_value(measurement: str, centile: float, ga_weeks: float) -> float:
    """The ``centile``-th centile of ``measurement`` (HC, AC, FL, BPD, OFD in mm; EFW in g)."""
    z = NormalDist().inv_cdf(centile / 100.0)
    if measurement == "EFW":
        lam, mu, sigma = efw_lms(ga_weeks * 7.0)
        return math.exp(mu * (1.0 + z * sigma * lam) ** (1.0 / lam))
    mean, sd = size_mean_sd(TITLES[measurement][2], ga_weeks * 7.0)
    return mean + z * sd


def curves(measurement: str, step_weeks: float = 0.25) -> dict[int, list[tuple[float, float]]]:
    """(GA weeks, value) points of each drawn centile over the standard's validity range."""
    lo, hi = TITLES[measurement][3]
    n = round((hi - lo) / step_weeks)
    weeks = [lo + i * step_weeks for i in range(n + 1)]
    return {c: [(w, centile_value(measurement, c, w)) for w in weeks] for c in CENTILES}


def growth_chart_png(
    measurement: str,
    *,
    ga_days: float | None,
    value: float | None,
    centile: float | None = None,
    dpi: int = 110,
) -> bytes:
    """PNG of the centile curves of ``measurement`` with the fetus's point at ``ga_days``.

    No point is drawn when ``ga_days`` or ``value`` is missing (the chart says so instead).
    """
    title, unit, _, (lo, hi) = TITLES[measurement]
    fig, ax = plt.subplots(figsize=(3.6, 2.7), dpi=dpi)
    try:
        for c, pts in curves(measurement).items():
            xs, ys = zip(*pts, strict=True)
            style = {"color": "#1f4e79", "linewidth": 1.6 if c == 50 else 0.9}
            if c in (3, 97):
                style["linestyle"] = "--"
            ax.plot(xs, ys, **style)
            ax.annotate(
                f"{c}",
                (xs[-1], ys[-1]),
                fontsize=6,
                xytext=(2, 0),
                textcoords="offset points",
                va="center",
                color="#1f4e79",
            )
        ax.set_xlim(lo, hi + 1.2)
        ax.set_xlabel("Gestational age (weeks)", fontsize=7)
        ax.set_ylabel(f"{measurement} ({unit})", fontsize=7)
        ax.set_title(f"{title} — INTERGROWTH-21st", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.25, linewidth=0.5)
        if ga_days is not None and value is not None:
            ax.plot([ga_days / 7.0], [value], marker="o", markersize=6, color="#c00000", zorder=5)
            label = f"{value:.0f} {unit}" + (f" ({centile:.0f}th)" if centile is not None else "")
            ax.annotate(
                label,
                (ga_days / 7.0, value),
                fontsize=7,
                color="#c00000",
                xytext=(5, -10),
                textcoords="offset points",
            )
        else:
            ax.text(
                0.5,
                0.92,
                "no value to plot",
                transform=ax.transAxes,
                ha="center",
                fontsize=7,
                color="#c00000",
            )
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
