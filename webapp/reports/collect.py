"""The signed exam as report content: reads the exam, the AI findings and the physician's decisions
as they stood when the exam was signed, and turns them into ``inference.reporting`` values.

Decisions and physician measurements are append-only, so "as signed" is everything recorded up to
the sign-off's time (an amendment opened later adds rows after it). The numbers that fed the
formulas are the sign-off's own snapshot (``summary["final_values_mm"]``), so the report says what
the physician signed even if something is added later; so is the GA from dates the centiles are
placed at (``summary["gestational_dating"]``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import pydicom
from django.conf import settings

from inference.reporting.biometry import derive
from inference.reporting.content import (
    KINDS,
    Amendment,
    Measurement,
    QualityItem,
    ReportContent,
    Segment,
    SourceFrame,
    stable_uid,
)
from webapp.analysis.models import MeasurementFinding, QualityFinding, SegmentationFinding
from webapp.analysis.services import mask_from_png
from webapp.exams.models import Instance, Study
from webapp.exams.services import instance_path
from webapp.review import findings as ai
from webapp.review.models import DecisionAction, FindingDecision, FindingType, SignOff

VIEW_TITLES = {
    "head_trans_thalamic": "Head (trans-thalamic plane)",
    "abdomen_ac": "Abdomen (AC plane)",
    "femur_fl": "Femur (FL plane)",
}
KIND_VIEW = {"HC": "head", "BPD": "head", "OFD": "head", "AC": "abdomen", "FL": "femur"}


@dataclass
class PxOnly:
    kind: str
    value_px: float
    origin: str
    reason: str = "no calibration covers all points: pixels only, no mm value"


@dataclass
class KeyFrame:
    """One frame with measurements on it (a plane's key image)."""

    label: str  # e.g. "head"
    title: str
    source: SourceFrame
    instance: Instance
    measurements: list[Measurement] = field(default_factory=list)


@dataclass
class Collected:
    study: Study
    signoff: SignOff
    content: ReportContent
    key_frames: list[KeyFrame]
    px_only: list[PxOnly]
    instances: dict[str, Instance]


def _person_name(user: Any) -> str:
    last, first = (user.last_name or "").strip(), (user.first_name or "").strip()
    if last or first:
        return f"{last}^{first}"
    return f"{user.get_username()}^"  # one component, marked as the family name (PS3.5 6.2.1)


def _decisions_as_of(study: Study, when: dt.datetime) -> dict[tuple[str, int], FindingDecision]:
    current: dict[tuple[str, int], FindingDecision] = {}
    rows = FindingDecision.objects.filter(study=study, decided_at__lte=when).order_by("version")
    for row in rows:
        current[(row.finding_type, row.finding_id)] = row
    return current


def _header(instance: Instance, cache: dict[int, pydicom.Dataset]) -> pydicom.Dataset:
    if instance.pk not in cache:
        cache[instance.pk] = pydicom.dcmread(instance_path(instance), stop_before_pixels=True)
    return cache[instance.pk]


def _tracking_uid(study: Study, what: str, pk: int) -> str:
    return stable_uid("sonoreview-tracking", study.study_instance_uid, what, pk)


def collect(signoff: SignOff) -> Collected:
    """Report content of ``signoff``. Reads files' headers and rows; no writes."""
    study = signoff.study
    when = signoff.signed_at
    decisions = _decisions_as_of(study, when)
    headers: dict[int, pydicom.Dataset] = {}
    measurements: list[Measurement] = []
    px_only: list[PxOnly] = []
    views: dict[tuple[str, int], str] = {}
    run = ai.latest_run(study)
    ai_rows = (
        MeasurementFinding.objects.filter(run=run, kind__in=KINDS)
        .select_related("instance", "model_version")
        .order_by("kind", "id")
        if run is not None
        else []
    )
    for r in ai_rows:
        d = decisions.get((FindingType.MEASUREMENT, r.pk))
        if d is not None and d.action == DecisionAction.REJECTED:
            continue
        edited = d is not None and d.action == DecisionAction.EDITED
        value = d.edited_value_mm if edited else r.value_mm
        geometry = (d.edited_geometry_px if edited else None) or r.geometry_px
        origin = "edited" if edited else "ai"
        if value is None:
            px_only.append(
                PxOnly(r.kind, (d.edited_value_px if edited else r.value_px) or 0.0, origin)
            )
            continue
        source = SourceFrame(_header(r.instance, headers), r.frame_number)
        views[source.key] = r.view_key
        mv = r.model_version
        measurements.append(
            Measurement(
                kind=r.kind,
                value_mm=float(value),
                geometry_px=geometry,
                source=source,
                origin=origin,
                tracking_uid=_tracking_uid(study, "ai", r.pk),
                convention=r.convention,
                algorithm=(mv.name, mv.version) if mv else ("sonoreview", "unknown"),
                selected=False,
                ai_value_mm=r.value_mm,
            )
        )
    for m in study.physician_measurements.filter(created_at__lte=when).select_related("instance"):
        d = decisions.get((FindingType.PHYSICIAN_MEASUREMENT, m.pk))
        if d is not None and d.action == DecisionAction.REJECTED:
            continue
        edited = d is not None and d.action == DecisionAction.EDITED
        value = d.edited_value_mm if edited else m.value_mm
        geometry = (d.edited_geometry_px if edited else None) or m.geometry_px
        if value is None:
            px_only.append(
                PxOnly(m.kind, (d.edited_value_px if edited else m.value_px) or 0.0, "physician")
            )
            continue
        measurements.append(
            Measurement(
                kind=m.kind,
                value_mm=float(value),
                geometry_px=geometry,
                source=SourceFrame(_header(m.instance, headers), m.frame_number),
                origin="physician",
                tracking_uid=_tracking_uid(study, "physician", m.pk),
                convention=m.convention,
                selected=False,
            )
        )
    final = {k: float(v) for k, v in (signoff.summary.get("final_values_mm") or {}).items()}
    marked: list[Measurement] = []
    taken: set[str] = set()
    # The physician's own value outranks the AI's (review.services.chosen_values); mark the row
    # whose value is the signed one.
    ordered = sorted(measurements, key=lambda m: (m.origin != "physician", m.origin != "edited"))
    for m in ordered:
        selected = (
            m.kind in final and m.kind not in taken and abs(final[m.kind] - m.value_mm) < 0.01
        )
        if selected:
            taken.add(m.kind)
        marked.append(replace(m, selected=selected))
    marked.sort(key=lambda m: (KINDS.index(m.kind), not m.selected))
    # Centiles at the GA from dates the physician signed (none in summaries signed before it
    # was captured: derive then uses the ultrasound GA and says the centiles are circular).
    dating = signoff.summary.get("gestational_dating")
    derived, notes = derive(
        {k: v for k, v in final.items() if k in KINDS},
        ga_days_by_dates=float(dating["ga_days"]) if dating else None,
    )
    if dating:
        lmp = f", LMP {dating['lmp']}" if dating.get("lmp") else ""
        notes = (
            f"Gestational age from dates: {dating['ga_weeks_days']} on the exam date "
            f"({dating['basis_display']}{lmp}; entered by {dating['by']}); centiles are placed "
            "at it.",
            *notes,
        )

    segments: list[Segment] = []
    seg_decisions = {k[1]: v for k, v in decisions.items() if k[0] == FindingType.SEGMENTATION}
    for s in (
        SegmentationFinding.objects.filter(run=run).select_related("instance", "model_version")
        if run is not None
        else []
    ):
        d = seg_decisions.get(s.pk)
        if d is not None and d.action == DecisionAction.REJECTED:
            continue
        mv = s.model_version
        segments.append(
            Segment(
                s.structure,
                mask_from_png(bytes(s.mask_png)),
                SourceFrame(_header(s.instance, headers), s.frame_number),
                (mv.name, mv.version) if mv else ("sonoreview", "unknown"),
            )
        )
    quality: list[QualityItem] = []
    for q in QualityFinding.objects.filter(run=run).order_by("view_key", "id") if run else []:
        d = decisions.get((FindingType.QUALITY, q.pk))
        quality.append(
            QualityItem(
                q.view_key,
                q.criterion_key,
                q.verdict,
                (f"edited: {d.edited_label}" if d.action == "edited" else d.action) if d else "",
                q.points,
            )
        )
    amendments = [
        Amendment(
            a.reason,
            a.opened_by.get_username(),
            a.opened_at.isoformat(timespec="minutes"),
            len(a.changes),
        )
        for a in study.amendments.select_related("opened_by")
        .filter(opened_at__lte=when)
        .order_by("id")
    ]
    if not headers:
        first = Instance.objects.filter(series__study=study).order_by("id").first()
        if first is not None:
            _header(first, headers)
    header = next(iter(headers.values())) if headers else pydicom.Dataset()
    user = signoff.signed_by
    content = ReportContent(
        header=header,
        measurements=tuple(marked),
        derived=derived,
        signer_name=_person_name(user),
        signer_login=user.get_username(),
        signed_at=signoff.signed_at,
        version=signoff.sequence,
        content_hash=signoff.content_hash,
        device_name="sonoreview",
        device_uid=stable_uid("sonoreview-device"),
        software_version=getattr(settings, "SONOREVIEW_VERSION", "0.1.0"),
        segments=tuple(segments),
        quality=tuple(quality),
        amendments=tuple(amendments),
        notes=notes,
    )
    instances = {i.sop_instance_uid: i for i in Instance.objects.filter(pk__in=headers)}
    key_frames: dict[tuple[str, int], KeyFrame] = {}
    for m in content.measurements:
        if m.source.key not in key_frames:
            view = views.get(m.source.key, "")
            label = KIND_VIEW.get(m.kind, "plane")
            key_frames[m.source.key] = KeyFrame(
                label=label,
                title=VIEW_TITLES.get(view, label.capitalize()),
                source=m.source,
                instance=instances[m.source.sop_instance_uid],
            )
        key_frames[m.source.key].measurements.append(m)
    frames = list(key_frames.values())
    counts: dict[str, int] = {}
    for k in frames:  # unique labels when a plane has several measured frames
        counts[k.label] = counts.get(k.label, 0) + 1
        if counts[k.label] > 1:
            k.label = f"{k.label}-{counts[k.label]}"
    return Collected(study, signoff, content, frames, px_only, instances)
