"""The PDF report: an HTML template rendered by Django, laid out by WeasyPrint.

Pictures are embedded as PNG data URIs: each plane's key image (the frame with its measurements
burned in, the same pixels as the DICOM key image) and the INTERGROWTH-21st growth charts.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from django.template.loader import render_to_string
from PIL import Image

from inference.biometry.identity import weeks_days
from inference.reporting.charts import growth_chart_png
from webapp.reports.collect import Collected

ORIGIN = {
    "ai": "AI, accepted",
    "edited": "AI, edited by physician",
    "physician": "Physician",
}
VERDICT = {"met": "Met", "not_met": "Not met", "not_assessable": "Not assessable"}
CHARTS = ("HC", "AC", "FL", "EFW")


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _pairs(items: list[Any]) -> list[list[Any]]:
    """Two pictures per row (tables lay out reliably across PDF pages)."""
    return [items[i : i + 2] for i in range(0, len(items), 2)]


def centile_text(centile: float) -> str:
    """A centile at 0.1 precision that never reads "100.0" or "0.0" (beyond the last step
    of the scale it says so)."""
    if centile > 99.9:
        return ">99.9"
    if centile < 0.1:
        return "<0.1"
    return f"{centile:.1f}"


def _wd(days: float) -> str:
    w, d = weeks_days(days)
    return f"{w}w {d}d"


def context(collected: Collected, key_images: dict[str, np.ndarray]) -> dict[str, Any]:
    """Template context; ``key_images`` maps a key frame's label to its burned-in RGB pixels."""
    c = collected.content
    study, signoff = collected.study, collected.signoff
    patient = study.patient
    ga_used = c.ga_used
    measurements = [
        {
            "kind": m.kind,
            "value": f"{m.value_mm:.1f}",
            "origin": ORIGIN.get(m.origin, m.origin),
            "ai_value": f"{m.ai_value_mm:.1f}" if m.origin == "edited" and m.ai_value_mm else "",
            "convention": m.convention or "—",
            "selected": m.selected,
            "source": f"image {collected.instances[m.source.sop_instance_uid].instance_number or '?'}, frame {m.source.frame_number}",
            "centile": (lambda d: centile_text(d.value) if d and m.selected else "")(
                c.centile(m.kind)
            ),
        }
        for m in c.measurements
    ]
    ages = [
        {
            "name": d.name,
            "inputs": ", ".join(d.inputs) or "—",
            "weeks": _wd(d.value),
            "days": f"{d.value:.1f}",
            "code": f"{d.code.value} ({d.code.scheme})" if d.code else "no DICOM code",
            "used": d.used,
            "flags": list(d.flags),
        }
        for d in c.derived
        if d.kind == "GA"
    ]
    weights = [
        {
            "name": d.name,
            "inputs": ", ".join(d.inputs),
            "grams": f"{d.value:.0f}",
            "code": f"{d.code.value} ({d.code.scheme})" if d.code else "no DICOM code",
            "used": d.used,
            "flags": list(d.flags),
        }
        for d in c.derived
        if d.kind == "EFW"
    ]
    centiles = [
        {
            "measurement": d.measurement,
            "value": f"{d.measured_value:.1f}" if d.measured_value is not None else "",
            "unit": "g" if d.measurement == "EFW" else "mm",
            "centile": centile_text(d.value),
            "z": f"{d.z:+.2f}" if d.z is not None else "",
            "name": d.name,
            "flags": list(d.flags),
        }
        for d in c.derived
        if d.kind == "centile"
    ]
    charts = []
    for kind in CHARTS:
        centile = c.centile(kind)
        if kind == "EFW":
            efw = next((d for d in c.derived if d.key == "efw.intergrowth21.hc_ac"), None)
            value = efw.value if efw else None
        else:
            selected = c.selected(kind)
            value = selected.value_mm if selected else None
        png = growth_chart_png(
            kind,
            ga_days=ga_used.value if ga_used else None,
            value=value,
            centile=centile.value if centile else None,
        )
        charts.append({"kind": kind, "src": png_data_uri(png)})
    quality: dict[str, list[dict[str, str]]] = {}
    for q in c.quality:
        quality.setdefault(q.view, []).append(
            {
                "criterion": q.criterion.replace("_", " "),
                "ai": VERDICT.get(q.verdict, q.verdict),
                "decision": q.decision or "—",
            }
        )
    scores = {
        view: f"{sum(1 for q in c.quality if q.view == view and q.verdict == 'met')}/{len(rows)}"
        for view, rows in quality.items()
    }
    key_images = [
        {
            "title": k.title,
            "src": png_data_uri(png_bytes(key_images[k.label])),
            "caption": ", ".join(f"{m.kind} {m.value_mm:.1f} mm" for m in k.measurements),
            "where": f"image {k.instance.instance_number or '?'}, frame {k.source.frame_number}",
        }
        for k in collected.key_frames
        if k.label in key_images
    ]
    return {
        "patient": patient,
        "study": study,
        "signoff": signoff,
        "signer": signoff.signed_by.get_full_name() or signoff.signed_by.get_username(),
        "sonographer": (
            (study.sonographer.get_full_name() or study.sonographer.get_username())
            if study.sonographer
            else study.performing_physician
        ),
        "version": c.version,
        "key_rows": _pairs(key_images),
        "measurements": measurements,
        "px_only": collected.px_only,
        "ages": ages,
        "ga_used": {"name": ga_used.name, "weeks": _wd(ga_used.value)} if ga_used else None,
        "weights": weights,
        "centiles": centiles,
        "chart_rows": _pairs(charts),
        "efw_centile": next((x for x in centiles if x["measurement"] == "EFW"), None),
        "quality": quality,
        "quality_scores": scores,
        "notes": list(c.notes),
        "amendments": list(c.amendments),
    }


def render_pdf(collected: Collected, key_images: dict[str, np.ndarray]) -> bytes:
    """The PDF bytes of one report version."""
    import weasyprint

    html = render_to_string("reports/report.html", context(collected, key_images))
    return weasyprint.HTML(string=html, base_url=".").write_pdf()
