"""Everything the exam page shows, as one JSON-ready dict (read-only; the view audits the read).

Per protocol view a plane card (best frame, flag, confidence, decision); per measurement the AI's
value beside the physician's, the value that counts, the geometry the viewer draws and edits;
quality criteria; segmentation contours; the GA from dates and the GA/EFW/centiles recomputed from
the final values (centiles at the GA from dates); the sign-offs, amendments and the exam's audit
history.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone

from inference.planes import taxonomy
from webapp.exams.models import AuditEvent, ExamStatus, Instance, Study
from webapp.review import findings as ai
from webapp.review import services
from webapp.review.geometry import calibration_for
from webapp.review.models import DatingBasis, FindingDecision, FindingType
from webapp.review.worklist import Row, annotate_rows

HISTORY_LIMIT = 300


def _when(value: Any) -> str | None:
    return None if value is None else timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def _decision(d: FindingDecision | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "action": d.action,
        "version": d.version,
        "by": d.decided_by.get_username(),
        "at": _when(d.decided_at),
        "edited_label": d.edited_label,
        "edited_value_mm": d.edited_value_mm,
        "edited_value_px": d.edited_value_px,
        "edited_geometry_px": d.edited_geometry_px,
        "calibration": d.calibration,
        "comment": d.comment,
        "amendment": d.amendment_id,
    }


def overlay_for(row: dict[str, Any], frame_index: int, text: str) -> dict[str, Any] | None:
    """The viewer bundle's overlay object for a measurement row (0-based frameIndex)."""
    g = row["geometry_px"]
    if not g:
        return None
    base = {
        "id": f"{row['finding_type']}:{row['finding_id']}",
        "label": row["kind"],
        "frameIndex": frame_index,
        "sopInstanceUID": row["sop"],
        "text": text,
        "editable": row["editable"],
    }
    if g.get("type") == "ellipse" or "cx" in g:
        return {**base, "kind": "ellipse", **{k: g[k] for k in ("cx", "cy", "a", "b", "angle")}}
    points = g.get("points") or [g.get("p1"), g.get("p2")]
    return {**base, "kind": "length", "p1": list(points[0]), "p2": list(points[1])}


def _fmt(row: dict[str, Any]) -> str:
    if row["final_mm"] is not None:
        return f"{row['kind']} {row['final_mm']:.1f} mm"
    if row["final_px"] is not None:
        return f"{row['kind']} {row['final_px']:.0f} px"
    return f"{row['kind']} rejected"


def exam_state(study: Study, user: Any) -> dict[str, Any]:
    can_review = user.has_role(*services.REVIEWER_ROLES)
    open_for_changes = study.status in services.REVIEWABLE and can_review
    decisions = services.latest_decisions(study)
    instances = list(
        Instance.objects.filter(series__study=study)
        .select_related("series")
        .prefetch_related("us_regions")
        .order_by("series__series_number", "series_id", "instance_number", "id")
    )
    by_id = {i.pk: i for i in instances}
    found = ai.ai_findings(study)
    row = Row(study)
    annotate_rows([row])
    run = row.run

    # planes: one card per protocol view
    protocol = run.protocol if run else "biometry"
    try:
        views = taxonomy.protocol(protocol)
    except ValueError:
        views = taxonomy.protocol("biometry")
    plane_rows = {f.label: f for f in found if f.type == "plane"}
    planes = []
    for v in views:
        f = plane_rows.get(v.key)
        d = decisions.get((FindingType.PLANE, f.id)) if f else None
        planes.append(
            {
                "view_key": v.key,
                "display": v.display_name,
                "finding_id": f.id if f else None,
                "flag": (f.flag if f else "absent") or "absent",
                "needs_person": v.classifier_label is None,
                "confidence": f.confidence if f else None,
                "sop": f.sop_instance_uid if f else "",
                "frame": f.frame_number if f else None,
                "model": f.model if f else "",
                "decision": _decision(d),
                "thumbnail": reverse(
                    "exams:rendered_frame", args=[f.sop_instance_uid, f.frame_number]
                )
                if f and f.sop_instance_uid and f.frame_number
                else None,
            }
        )

    # measurements: AI ones, then the physician's own
    measurements = []
    for f in found:
        if f.type != "measurement":
            continue
        d = decisions.get((FindingType.MEASUREMENT, f.id))
        geometry = d.edited_geometry_px if d and d.edited_geometry_px else f.geometry_px
        final_mm, final_px = f.value_mm, f.value_px
        if d and d.action == "rejected":
            final_mm = final_px = None
        elif d and d.action == "edited":
            final_mm, final_px = d.edited_value_mm, d.edited_value_px
        measurements.append(
            {
                "finding_type": FindingType.MEASUREMENT,
                "finding_id": f.id,
                "kind": f.label,
                "source": "ai",
                "sop": f.sop_instance_uid,
                "frame": f.frame_number,
                "ai_value_mm": f.value_mm,
                "ai_value_px": f.value_px,
                "ai_geometry_px": f.geometry_px,
                "geometry_px": geometry,
                "calibration": (d.calibration if d and d.action == "edited" else f.calibration),
                "convention": f.convention,
                "confidence": f.confidence,
                "model": f.model,
                "final_mm": final_mm,
                "final_px": final_px,
                "decision": _decision(d),
                "version": d.version if d else 0,
                "editable": open_for_changes,
            }
        )
    for m in study.physician_measurements.select_related("instance", "created_by"):
        d = decisions.get((FindingType.PHYSICIAN_MEASUREMENT, m.pk))
        geometry = d.edited_geometry_px if d and d.edited_geometry_px else m.geometry_px
        final_mm, final_px = m.value_mm, m.value_px
        if d and d.action == "rejected":
            final_mm = final_px = None
        elif d and d.action == "edited":
            final_mm, final_px = d.edited_value_mm, d.edited_value_px
        measurements.append(
            {
                "finding_type": FindingType.PHYSICIAN_MEASUREMENT,
                "finding_id": m.pk,
                "kind": m.kind,
                "source": f"added by {m.created_by.get_username()}",
                "sop": m.instance.sop_instance_uid,
                "frame": m.frame_number,
                "ai_value_mm": None,
                "ai_value_px": None,
                "ai_geometry_px": None,
                "geometry_px": geometry,
                "calibration": d.calibration if d and d.action == "edited" else m.calibration,
                "convention": m.convention,
                "confidence": None,
                "model": "",
                "final_mm": final_mm,
                "final_px": final_px,
                "decision": _decision(d),
                "version": d.version if d else 0,
                "editable": open_for_changes,
            }
        )
    for r in measurements:
        inst = next((i for i in instances if i.sop_instance_uid == r["sop"]), None)
        r["px_only_reason"] = ""
        if r["final_mm"] is None and r["final_px"] is not None and inst is not None:
            reason = calibration_for(inst, r["frame"] or 1, [])
            r["px_only_reason"] = (
                reason
                if isinstance(reason, str)
                else "px only — no calibration covers these points"
            )
        r["overlay"] = overlay_for(r, (r["frame"] or 1) - 1, _fmt(r))

    quality = []
    for f in found:
        if f.type != "quality":
            continue
        d = decisions.get((FindingType.QUALITY, f.id))
        quality.append(
            {
                "finding_id": f.id,
                "criterion": f.label,
                "view": f.extra.get("view", ""),
                "verdict": f.flag,
                "rationale": f.display,
                "decision": _decision(d),
                "version": d.version if d else 0,
                "sop": f.sop_instance_uid,
                "frame": f.frame_number,
            }
        )

    segmentations = []
    for f in found:
        if f.type != "segmentation":
            continue
        points = ai.contour_of(f.id)
        if len(points) >= 2:
            segmentations.append(
                {
                    "finding_id": f.id,
                    "structure": f.label,
                    "sop": f.sop_instance_uid,
                    "frame": f.frame_number,
                    "overlay": {
                        "id": f"segmentation:{f.id}",
                        "kind": "contour",
                        "label": f.label,
                        "frameIndex": (f.frame_number or 1) - 1,
                        "sopInstanceUID": f.sop_instance_uid,
                        "points": points,
                    },
                }
            )

    relabels = [
        {
            "sop": r.instance.sop_instance_uid,
            "frame": r.frame_number,
            "label": r.new_label,
            "ai_label": r.ai_label,
            "version": r.version,
            "by": r.relabelled_by.get_username(),
            "at": _when(r.relabelled_at),
        }
        for r in services.latest_relabels(study).values()
    ]
    rows = services.final_measurements(study)
    values = services.chosen_values(rows)
    dating = services.current_dating(study)
    gestational_dating = services.dating_block(dating)
    if gestational_dating is not None:
        gestational_dating["at"] = _when(dating.entered_at)
    signoffs = [
        {
            "sequence": s.sequence,
            "by": s.signed_by.get_username(),
            "at": _when(s.signed_at),
            "hash": s.content_hash,
        }
        for s in study.signoffs.select_related("signed_by").order_by("sequence")
    ]
    amendments = [
        {
            "id": a.pk,
            "reason": a.reason,
            "by": a.opened_by.get_username(),
            "at": _when(a.opened_at),
            "open": a.closed_by_id is None,
            "changes": a.changes,
        }
        for a in study.amendments.select_related("opened_by").order_by("id")
    ]
    history = [
        {
            "at": _when(e.at),
            "user": e.username or "system",
            "action": e.action,
            "detail": e.detail,
            "ip": e.ip_address or "",
        }
        for e in AuditEvent.objects.filter(study_instance_uid=study.study_instance_uid).order_by(
            "-at"
        )[:HISTORY_LIMIT]
    ]
    patient = study.patient
    return {
        "study": {
            "id": study.pk,
            "uid": study.study_instance_uid,
            "status": study.status,
            "status_display": study.get_status_display(),
            "patient_name": patient.name,
            "patient_id": patient.patient_id,
            "accession": study.accession_number,
            "date": study.study_date.isoformat() if study.study_date else None,
            "sonographer": study.sonographer.get_username() if study.sonographer else "",
            "signed": study.status == ExamStatus.SIGNED,
            "can_review": can_review,
            "open_for_changes": open_for_changes,
            "can_amend": can_review and study.status == ExamStatus.SIGNED,
            "can_sign": can_review and study.status in services.REVIEWABLE,
        },
        "instances": [
            {
                "sopInstanceUID": i.sop_instance_uid,
                "seriesInstanceUID": i.series.series_instance_uid,
                "numberOfFrames": i.number_of_frames,
                "frameTimeMs": i.frame_time_ms,
                "rows": i.rows,
                "columns": i.columns,
                "calibration": i.calibration_source,
                "thumbnailUrl": reverse("exams:thumbnail", args=[i.sop_instance_uid]),
                "renderedUrlTemplate": reverse(
                    "exams:rendered_frame", args=[i.sop_instance_uid, 999999]
                ).replace("999999", "{n}"),
            }
            for i in instances
        ],
        "protocol": protocol,
        "progress": row.progress,
        "planes": planes,
        "planes_found": row.planes_found,
        "planes_required": row.planes_required,
        "measurements": measurements,
        "quality": quality,
        "segmentations": segmentations,
        "relabels": relabels,
        "views": [{"key": v.key, "display": v.display_name} for v in taxonomy.VIEWS],
        "final_values_mm": services.shown_mm(values),
        "gestational_dating": gestational_dating,
        "dating_bases": [{"key": k, "display": v} for k, v in DatingBasis.choices],
        "biometry": services.biometry(values, ga_days=services.dating_ga_days(dating)),
        "ai_derived": ai.derived_findings(study),
        "undecided_measurements": sum(
            1 for r in rows if r["source"] == "ai" and r["state"] == "pending"
        ),
        "signoffs": signoffs,
        "amendments": amendments,
        "history": history,
        "instance_ids": {i.sop_instance_uid: i.pk for i in by_id.values()},
    }
