"""Review services: decide on AI findings, add measurements, relabel frames, record the GA from
dates, sign, amend.

Every service takes keyword arguments, runs in one transaction holding the exam's row lock (so a
sign-off and an edit cannot interleave), refuses changes to a signed exam, and audits what it
did. Errors are ``ReviewError`` subclasses carrying the input ``field`` at fault and an HTTP-ish
``status`` the views pass on: 400 bad input, 403 not allowed, 404 unknown finding, 409 stale
version or locked exam.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from inference.biometry import compute_all, parse_ga_weeks
from inference.planes.taxonomy import VIEWS
from webapp.exams import services as exam_services
from webapp.exams.models import AuditEvent, ExamStatus, Instance, Study
from webapp.review import findings as ai
from webapp.review.geometry import GeometryError, measure, shape_for
from webapp.review.models import (
    FINDING_FK,
    Amendment,
    DatingBasis,
    DecisionAction,
    FindingDecision,
    FindingType,
    GestationalDating,
    PhysicianMeasurement,
    PlaneRelabel,
    SignOff,
)

REVIEWER_ROLES = ("obstetrician",)
REVIEWABLE = (ExamStatus.READY_FOR_REVIEW, ExamStatus.IN_REVIEW, ExamStatus.AMENDED)
VIEW_KEYS = tuple(v.key for v in VIEWS)
MAX_COMMENT = 2000
MAX_REASON = 2000
MM_SHOWN_DECIMALS = 1
"""Final mm values are signed and shown at 0.1 mm, rounded once from the measured value: an
earlier rounding to 0.01 first turned 244.046 into 244.05, which the page then showed as 244.1
beside a live value of 244.0."""
DATING_MIN_DAYS = 10 * 7
DATING_MAX_DAYS = 44 * 7
"""A GA from dates outside 10+0 to 44+0 weeks on the exam date is a typing or date error: below
10 weeks there is no biometry to place on a chart, beyond 44 weeks there is no pregnancy."""
# Final measurement values feed the biometry calculator under these names.
CALCULATOR_NAMES = {"HC": "hc_mm", "BPD": "bpd_mm", "AC": "ac_mm", "FL": "fl_mm", "OFD": "ofd_mm"}


class ReviewError(Exception):
    status = 400

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.message, "field": self.field or None}


class NotAllowed(ReviewError):
    status = 403


class NotFound(ReviewError):
    status = 404


class Conflict(ReviewError):
    status = 409


class ExamLocked(Conflict):
    """The exam is signed (or otherwise not open for changes)."""


class StaleVersion(Conflict):
    """Somebody else changed the record since the caller read it."""


def _check_reviewer(user: Any) -> None:
    if user is None or not user.is_authenticated or not user.has_role(*REVIEWER_ROLES):
        raise NotAllowed("only obstetricians may review and sign exams")


def _lock_open_study(study: Study) -> tuple[Study, Amendment | None]:
    """Lock the exam row; raise ExamLocked unless it is open for review. Returns the open
    amendment when the exam is being amended. Caller holds a transaction."""
    locked = Study.objects.select_for_update().get(pk=study.pk)
    if locked.status == ExamStatus.SIGNED:
        last = locked.signoffs.order_by("-sequence").select_related("signed_by").first()
        who = (
            f" by {last.signed_by.get_username()} at {last.signed_at:%Y-%m-%d %H:%M:%S %Z}"
            if last
            else ""
        )
        raise ExamLocked(
            f"this exam is signed{who} and can no longer be changed; open an amendment "
            "(with a reason) to change it"
        )
    if locked.status not in REVIEWABLE:
        raise ExamLocked(
            f"this exam is {locked.get_status_display().lower()}, not ready for review; "
            "changes are possible once the analysis has finished"
        )
    amendment = None
    if locked.status == ExamStatus.AMENDED:
        amendment = locked.amendments.filter(closed_by__isnull=True).order_by("-id").first()
    return locked, amendment


def _start_review(study: Study) -> None:
    if study.status == ExamStatus.READY_FOR_REVIEW:
        study.transition_to(ExamStatus.IN_REVIEW)


def _stale(by: Any, at: Any, what: str) -> StaleVersion:
    when = timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S %Z")
    return StaleVersion(f"{what} was changed by {by.get_username()} at {when}; reload", "version")


def _audit(actor: Any, action: str, study: Study, what: str, detail: str) -> None:
    event = exam_services.audit(actor, action, study, f"{what}: {detail}"[:2000])
    del event


def _note_change(amendment: Amendment | None, change: dict[str, Any]) -> None:
    if amendment is None:
        return
    amendment.changes = [*amendment.changes, change]
    amendment.save(update_fields=["changes"])


def _clean_text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReviewError(f"{name} must be text", name)
    value = value.strip()
    if len(value) > limit:
        raise ReviewError(f"{name} is longer than {limit} characters", name)
    return value


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ReviewError("version must be a whole number ≥ 0 (the version you saw)", "version")
    try:
        number = int(value)
    except ValueError:
        raise ReviewError(
            "version must be a whole number ≥ 0 (the version you saw)", "version"
        ) from None
    if number < 0:
        raise ReviewError("version must be a whole number ≥ 0 (the version you saw)", "version")
    return number


# --------------------------------------------------------------------------------------------
# Reading the current state
# --------------------------------------------------------------------------------------------


def latest_decisions(study: Study) -> dict[tuple[str, int], FindingDecision]:
    """The current (highest-version) decision per finding of ``study``."""
    current: dict[tuple[str, int], FindingDecision] = {}
    for row in study.decisions.select_related("decided_by").order_by("version"):
        current[(row.finding_type, row.finding_id)] = row
    return current


def latest_relabels(study: Study) -> dict[tuple[int, int], PlaneRelabel]:
    current: dict[tuple[int, int], PlaneRelabel] = {}
    for row in study.plane_relabels.select_related("relabelled_by").order_by("version"):
        current[(row.instance_id, row.frame_number)] = row
    return current


def current_dating(study: Study) -> GestationalDating | None:
    """The exam's current (highest-version) GA from dates, or None when none was entered."""
    return (
        GestationalDating.objects.filter(study=study)
        .select_related("entered_by")
        .order_by("-version")
        .first()
    )


def dating_ga_days(dating: GestationalDating | None) -> float | None:
    """GA in days to place centiles at: the GA from dates, or None (no size centiles)."""
    return None if dating is None else float(dating.ga_days)


def dating_block(dating: GestationalDating | None) -> dict[str, Any] | None:
    """The GA from dates as the page, the signed summary and the reports carry it (JSON-ready;
    ``at`` in ISO 8601 with offset). None when none was entered. Pure apart from reading."""
    if dating is None:
        return None
    return {
        "basis": dating.basis,
        "basis_display": dating.get_basis_display(),
        "ga_days": dating.ga_days,
        "ga_weeks_days": dating.ga_weeks_days,
        "lmp": dating.lmp_date.isoformat() if dating.lmp_date else None,
        "comment": dating.comment,
        "by": dating.entered_by.get_username(),
        "at": dating.entered_at.isoformat(),
        "version": dating.version,
    }


def _instance_of(study: Study, sop_instance_uid: Any) -> Instance:
    if not isinstance(sop_instance_uid, str) or not sop_instance_uid:
        raise ReviewError("instance (SOP Instance UID) is required", "instance")
    instance = (
        Instance.objects.filter(series__study=study, sop_instance_uid=sop_instance_uid)
        .select_related("series")
        .first()
    )
    if instance is None:
        raise ReviewError(f"image {sop_instance_uid} is not part of this exam", "instance")
    return instance


def _frame(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ReviewError("frame must be a whole number ≥ 1", "frame")
    try:
        return int(value)
    except ValueError:
        raise ReviewError("frame must be a whole number ≥ 1", "frame") from None


def final_measurements(study: Study) -> list[dict[str, Any]]:
    """Each measurement of the exam with the AI value, the decision and the value that counts.

    ``final_mm`` is the physician's value when edited, the AI's when accepted, None when
    rejected, and the AI's (``pending``) while undecided.
    """
    decisions = latest_decisions(study)
    rows: list[dict[str, Any]] = []
    for f in ai.ai_findings(study, types=("measurement",)):
        d = decisions.get(("measurement", f.id))
        final = f.value_mm
        final_px = f.value_px
        state = "pending"
        if d is not None:
            state = d.action
            if d.action == DecisionAction.REJECTED:
                final, final_px = None, None
            elif d.action == DecisionAction.EDITED:
                final, final_px = d.edited_value_mm, d.edited_value_px
        rows.append(
            {
                "source": "ai",
                "finding_type": "measurement",
                "finding_id": f.id,
                "kind": f.label,
                "ai_value_mm": f.value_mm,
                "ai_value_px": f.value_px,
                "state": state,
                "final_mm": final,
                "final_px": final_px,
                "confidence": f.confidence,
                "version": d.version if d else 0,
            }
        )
    for m in study.physician_measurements.all():
        d = decisions.get((FindingType.PHYSICIAN_MEASUREMENT, m.pk))
        final, final_px, state = m.value_mm, m.value_px, "added"
        if d is not None:
            state = d.action
            if d.action == DecisionAction.REJECTED:
                final, final_px = None, None
            elif d.action == DecisionAction.EDITED:
                final, final_px = d.edited_value_mm, d.edited_value_px
        rows.append(
            {
                "source": "physician",
                "finding_type": FindingType.PHYSICIAN_MEASUREMENT,
                "finding_id": m.pk,
                "kind": m.kind,
                "ai_value_mm": None,
                "ai_value_px": None,
                "state": state,
                "final_mm": final,
                "final_px": final_px,
                "confidence": None,
                "version": d.version if d else 0,
            }
        )
    return rows


def shown_mm(values_mm: dict[str, float]) -> dict[str, float]:
    """The final values as signed and displayed (``MM_SHOWN_DECIMALS``). Pure."""
    return {k: round(v, MM_SHOWN_DECIMALS) for k, v in values_mm.items()}


def biometry(values_mm: dict[str, float], *, ga_days: float | None = None) -> dict[str, Any]:
    """GA / EFW / centiles from final values in mm (names HC, BPD, AC, FL, OFD) via
    inference.biometry — the single source of truth for formulas. Pure."""
    given = {CALCULATOR_NAMES[k]: v for k, v in values_mm.items() if k in CALCULATOR_NAMES}
    if not given:
        return {"error": "no measurement in mm yet (px-only measurements feed no formula)"}
    try:
        return compute_all(given, ga_days=ga_days).to_dict()
    except ValueError as exc:
        return {"error": str(exc)}


def chosen_values(
    rows: list[dict[str, Any]], *, override: dict[str, Any] | None = None
) -> dict[str, float]:
    """One mm value per measurement kind: the physician's own (newest) over the AI's (most
    confident). ``override`` (finding_type, finding_id, value_mm) substitutes a value being
    dragged, so the page shows the GA the edit would give."""
    best: dict[str, tuple[int, float, float]] = {}
    for row in rows:
        value = row["final_mm"]
        if override and (row["finding_type"], row["finding_id"]) == (
            override["finding_type"],
            override["finding_id"],
        ):
            value = override["value_mm"]
        if value is None:
            continue
        rank = (
            1 if row["source"] == "physician" else 0,
            row["finding_id"] if row["source"] == "physician" else (row["confidence"] or 0),
        )
        if row["kind"] not in best or rank > best[row["kind"]][:2]:
            best[row["kind"]] = (rank[0], rank[1], value)
    if override and override.get("finding_type") == "new" and override.get("value_mm") is not None:
        best[override["kind"]] = (2, 0, override["value_mm"])
    return {k: v[2] for k, v in best.items()}


def preview_measurement(
    *,
    study: Study,
    finding_type: str,
    finding_id: int | None,
    kind: str | None,
    sop_instance_uid: str | None,
    frame: Any,
    geometry_px: Any,
    ga_days: float | None = None,
) -> dict[str, Any]:
    """Value (px, mm when calibrated) and the exam's GA/EFW/centiles if this geometry were saved.

    No side effects (the caller audits the read). For an existing finding the image, frame and
    kind come from it; for a new measurement they are given. Centiles are placed at ``ga_days``
    when given (a GA typed on the page), else at the exam's stored GA from dates, else there are
    none (a GA from these same measurements would be circular).
    """
    if finding_type in (FindingType.MEASUREMENT, FindingType.PHYSICIAN_MEASUREMENT):
        target = _measurement_target(study, finding_type, finding_id)
        instance, frame_number, kind = target["instance"], target["frame_number"], target["kind"]
    elif finding_type == "new":
        instance = _instance_of(study, sop_instance_uid)
        frame_number = _frame(frame)
        if not isinstance(kind, str):
            raise ReviewError("kind is required (HC, BPD, OFD, AC or FL)", "kind")
    else:
        raise ReviewError(
            "finding_type must be measurement, physician_measurement or new", "finding_type"
        )
    try:
        measured = measure(
            instance=instance, frame_number=frame_number, kind=kind, geometry_px=geometry_px
        )
    except GeometryError as exc:
        raise ReviewError(str(exc), exc.field) from exc
    rows = final_measurements(study)
    values = chosen_values(
        rows,
        override={
            "finding_type": finding_type,
            "finding_id": finding_id,
            "kind": kind,
            "value_mm": measured.value_mm,
        },
    )
    if ga_days is None:
        ga_days = dating_ga_days(current_dating(study))
    return {"kind": kind, **measured.as_dict(), "biometry": biometry(values, ga_days=ga_days)}


def _measurement_target(study: Study, finding_type: str, finding_id: Any) -> dict[str, Any]:
    if isinstance(finding_id, bool) or not isinstance(finding_id, int):
        raise ReviewError("finding_id must be a whole number", "finding_id")
    if finding_type == FindingType.PHYSICIAN_MEASUREMENT:
        m = study.physician_measurements.select_related("instance").filter(pk=finding_id).first()
        if m is None:
            raise NotFound(
                f"physician measurement {finding_id} is not part of this exam", "finding_id"
            )
        return {
            "instance": m.instance,
            "frame_number": m.frame_number,
            "kind": m.kind,
            "snapshot": {
                "label": m.kind,
                "geometry_px": m.geometry_px,
                "value_mm": m.value_mm,
                "value_px": m.value_px,
                "by": m.created_by_id,
            },
        }
    f = ai.find(study, finding_type, finding_id)
    if f is None:
        raise NotFound(
            f"{finding_type} finding {finding_id} is not part of this exam's analysis", "finding_id"
        )
    instance = Instance.objects.filter(pk=f.instance_id).first() if f.instance_id else None
    return {
        "instance": instance,
        "frame_number": f.frame_number or 1,
        "kind": f.label,
        "snapshot": f.snapshot(),
        "finding": f,
    }


# --------------------------------------------------------------------------------------------
# Changing things
# --------------------------------------------------------------------------------------------


def decide_finding(
    *,
    study: Study,
    finding_type: Any,
    finding_id: Any,
    action: Any,
    version: Any,
    user: Any,
    geometry_px: Any = None,
    label: Any = None,
    comment: Any = None,
    actor: Any = None,
) -> FindingDecision:
    """Accept, edit or reject one finding; return the new decision row.

    Side effects, in one transaction under the exam's row lock: a new FindingDecision row with
    version = ``version`` + 1 (``version`` is the one the caller saw, 0 = undecided); the exam
    moves ready_for_review → in_review on its first decision; an audit event (``actor``: the
    request, for IP and path; defaults to ``user``); under an open amendment the change is listed
    on it. Raises StaleVersion if someone decided since, ExamLocked on a signed exam.
    Edits of measurements take ``geometry_px`` (value, mm and GA recomputed here); edits of a
    plane take ``label`` (a view key); edits of a quality criterion take ``label`` met/not_met.
    """
    _check_reviewer(user)
    if finding_type not in FindingType.values:
        raise ReviewError(
            f"finding_type must be one of {', '.join(FindingType.values)}", "finding_type"
        )
    if action not in DecisionAction.values:
        raise ReviewError("action must be accepted, edited or rejected", "action")
    if isinstance(finding_id, bool) or not isinstance(finding_id, int):
        raise ReviewError("finding_id must be a whole number", "finding_id")
    seen = _version(version)
    comment = _clean_text(comment, "comment", MAX_COMMENT)
    with transaction.atomic():
        locked, amendment = _lock_open_study(study)
        fields: dict[str, Any] = {}
        if finding_type in (FindingType.MEASUREMENT, FindingType.PHYSICIAN_MEASUREMENT):
            target = _measurement_target(locked, finding_type, finding_id)
            snapshot = target["snapshot"]
            if action == DecisionAction.EDITED:
                if target["instance"] is None:
                    raise ReviewError("this finding has no image to measure on", "finding_id")
                try:
                    measured = measure(
                        instance=target["instance"],
                        frame_number=target["frame_number"],
                        kind=target["kind"],
                        geometry_px=geometry_px,
                    )
                except GeometryError as exc:
                    raise ReviewError(str(exc), exc.field) from exc
                fields = {
                    "edited_geometry_px": measured.geometry_px,
                    "edited_geometry_mm": measured.geometry_mm,
                    "edited_value_px": measured.value_px,
                    "edited_value_mm": measured.value_mm,
                    "calibration": measured.calibration,
                }
        else:
            f = ai.find(locked, finding_type, finding_id)
            if f is None:
                raise NotFound(
                    f"{finding_type} finding {finding_id} is not part of this exam's analysis",
                    "finding_id",
                )
            snapshot = f.snapshot()
            if action == DecisionAction.EDITED:
                allowed = VIEW_KEYS if finding_type == FindingType.PLANE else ("met", "not_met")
                if label not in allowed:
                    raise ReviewError(
                        f"an edit of a {finding_type} finding needs label, one of {', '.join(allowed)}",
                        "label",
                    )
                fields = {"edited_label": label}
        latest = (
            FindingDecision.objects.filter(
                study=locked, finding_type=finding_type, finding_id=finding_id
            )
            .select_related("decided_by")
            .order_by("-version")
            .first()
        )
        current = latest.version if latest else 0
        if seen != current:
            if latest is None:
                raise StaleVersion(
                    "this finding has not been decided yet; send version 0", "version"
                )
            raise _stale(latest.decided_by, latest.decided_at, "this finding")
        _start_review(locked)
        try:
            with transaction.atomic():
                decision = FindingDecision.objects.create(
                    study=locked,
                    finding_type=finding_type,
                    finding_id=finding_id,
                    version=current + 1,
                    action=action,
                    ai_snapshot=snapshot,
                    comment=comment,
                    decided_by=user,
                    amendment=amendment,
                    **{f"{FINDING_FK[finding_type]}_id": finding_id},
                    **fields,
                )
        except IntegrityError:  # pragma: no cover - the row lock serialises writers first
            raise StaleVersion(
                "this finding was changed at the same moment; reload", "version"
            ) from None
        if fields.get("edited_value_mm") is not None or finding_type in (
            FindingType.MEASUREMENT,
            FindingType.PHYSICIAN_MEASUREMENT,
        ):
            rows = final_measurements(locked)
            decision.derived = biometry(
                chosen_values(rows), ga_days=dating_ga_days(current_dating(locked))
            )
            decision.save(update_fields=["derived"])
        _note_change(
            amendment,
            {
                "what": "decision",
                "finding_type": finding_type,
                "finding_id": finding_id,
                "action": action,
                "version": decision.version,
                "by": user.get_username(),
                "at": decision.decided_at.isoformat(),
            },
        )
        value = fields.get("edited_value_mm") or fields.get("edited_label") or ""
        _audit(
            actor or user,
            AuditEvent.Action.UPDATE,
            locked,
            "finding decision",
            f"{finding_type} {finding_id} {action} v{decision.version} {value}".strip(),
        )
    study.refresh_from_db(fields=["status", "status_changed_at"])
    return decision


def add_measurement(
    *,
    study: Study,
    sop_instance_uid: Any,
    frame: Any,
    kind: Any,
    geometry_px: Any,
    user: Any,
    convention: Any = "",
    actor: Any = None,
) -> PhysicianMeasurement:
    """Record a measurement the AI missed. Side effects: one PhysicianMeasurement row (value and
    mm by the calibration rule), the exam moves to in_review if it was ready, audit event, and
    the change listed on an open amendment. ExamLocked on a signed exam."""
    _check_reviewer(user)
    convention = _clean_text(convention, "convention", 40)
    if not isinstance(kind, str):
        raise ReviewError("kind is required (HC, BPD, OFD, AC or FL)", "kind")
    try:
        shape = shape_for(kind)
    except GeometryError as exc:
        raise ReviewError(str(exc), exc.field) from exc
    with transaction.atomic():
        locked, amendment = _lock_open_study(study)
        instance = _instance_of(locked, sop_instance_uid)
        frame_number = _frame(frame)
        try:
            measured = measure(
                instance=instance, frame_number=frame_number, kind=kind, geometry_px=geometry_px
            )
        except GeometryError as exc:
            raise ReviewError(str(exc), exc.field) from exc
        _start_review(locked)
        m = PhysicianMeasurement.objects.create(
            study=locked,
            instance=instance,
            frame_number=frame_number,
            kind=kind,
            shape=shape,
            convention=convention,
            geometry_px=measured.geometry_px,
            geometry_mm=measured.geometry_mm,
            value_px=measured.value_px,
            value_mm=measured.value_mm,
            calibration=measured.calibration,
            created_by=user,
            amendment=amendment,
        )
        _note_change(
            amendment,
            {
                "what": "measurement added",
                "id": m.pk,
                "kind": kind,
                "value_mm": m.value_mm,
                "by": user.get_username(),
                "at": m.created_at.isoformat(),
            },
        )
        mm = (
            f"{m.value_mm:.1f} mm"
            if m.value_mm is not None
            else f"{m.value_px:.1f} px (no calibration)"
        )
        _audit(
            actor or user,
            AuditEvent.Action.CREATE,
            locked,
            "physician measurement",
            f"{kind} {mm} on {instance.sop_instance_uid} frame {frame_number}",
        )
    study.refresh_from_db(fields=["status", "status_changed_at"])
    return m


def relabel_frame(
    *,
    study: Study,
    sop_instance_uid: Any,
    frame: Any,
    new_label: Any,
    version: Any,
    user: Any,
    ai_label: str = "",
    comment: Any = None,
    actor: Any = None,
) -> PlaneRelabel:
    """Give one frame a physician's plane label (a view key). Side effects: a new PlaneRelabel
    row with the next version per frame (StaleVersion if ``version`` is not the current one),
    in_review status, audit event, amendment entry. ExamLocked on a signed exam."""
    _check_reviewer(user)
    if new_label not in VIEW_KEYS:
        raise ReviewError(
            f"new_label must be a view key, one of {', '.join(VIEW_KEYS)}", "new_label"
        )
    seen = _version(version)
    comment = _clean_text(comment, "comment", MAX_COMMENT)
    with transaction.atomic():
        locked, amendment = _lock_open_study(study)
        instance = _instance_of(locked, sop_instance_uid)
        frame_number = _frame(frame)
        if not 1 <= frame_number <= instance.number_of_frames:
            raise ReviewError(
                f"frame {frame_number} does not exist (the image has {instance.number_of_frames})",
                "frame",
            )
        latest = (
            PlaneRelabel.objects.filter(instance=instance, frame_number=frame_number)
            .select_related("relabelled_by")
            .order_by("-version")
            .first()
        )
        current = latest.version if latest else 0
        if seen != current:
            if latest is None:
                raise StaleVersion(
                    "this frame has not been relabelled yet; send version 0", "version"
                )
            raise _stale(latest.relabelled_by, latest.relabelled_at, "this frame's label")
        _start_review(locked)
        row = PlaneRelabel.objects.create(
            study=locked,
            instance=instance,
            frame_number=frame_number,
            version=current + 1,
            ai_label=_clean_text(ai_label, "ai_label", 64),
            new_label=new_label,
            comment=comment,
            relabelled_by=user,
            amendment=amendment,
        )
        _note_change(
            amendment,
            {
                "what": "frame relabelled",
                "sop": instance.sop_instance_uid,
                "frame": frame_number,
                "label": new_label,
                "by": user.get_username(),
                "at": row.relabelled_at.isoformat(),
            },
        )
        _audit(
            actor or user,
            AuditEvent.Action.UPDATE,
            locked,
            "plane relabel",
            f"{instance.sop_instance_uid} frame {frame_number} → {new_label} v{row.version}",
        )
    study.refresh_from_db(fields=["status", "status_changed_at"])
    return row


def _dating_basis(value: Any) -> str:
    if value not in DatingBasis.values:
        choices = ", ".join(f"{v} ({label})" for v, label in DatingBasis.choices)
        raise ReviewError(f"basis must be one of: {choices}", "basis")
    return value


def _ga_days_from_weeks(value: Any) -> int:
    """Whole days from ``"20+3"`` / ``"20w3d"`` / ``"20"`` via inference.biometry.parse_ga_weeks."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ReviewError("ga_weeks must be weeks+days as text, e.g. 20+3", "ga_weeks")
    text = str(value).strip()
    try:
        days = parse_ga_weeks(text)
    except ValueError as exc:
        raise ReviewError(str(exc), "ga_weeks") from None
    if not math.isfinite(days) or days != int(days):
        raise ReviewError(
            f"ga_weeks: {text!r} is not a whole number of days; write weeks+days, e.g. 20+3",
            "ga_weeks",
        )
    return int(days)


def _lmp_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, str | dt.date):
        raise ReviewError("lmp must be a date, YYYY-MM-DD", "lmp")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ReviewError(f"lmp: {value!r} is not a date; write YYYY-MM-DD", "lmp") from None


def _weeks_days(days: int) -> str:
    return f"{days // 7}w{days % 7}d"


def set_gestational_dating(
    *,
    study: Study,
    basis: Any,
    version: Any,
    user: Any,
    ga_weeks: Any = None,
    lmp: Any = None,
    comment: Any = None,
    actor: Any = None,
) -> GestationalDating:
    """Record the exam's gestational age from dates (what size centiles are placed at).

    Exactly one of ``ga_weeks`` (the GA on the exam date as weeks+days, ``"20+3"``) or ``lmp``
    (first day of the last menstrual period, ``YYYY-MM-DD``; only with basis ``lmp``: GA = study
    date − LMP, so the exam needs a study date and the LMP may not be after it). The GA must lie
    within 10+0 to 44+0 weeks. Basis ``other`` needs a comment saying what the dating rests on.

    Side effects, in one transaction under the exam's row lock: a new GestationalDating row with
    version = ``version`` + 1 (``version`` is the one the caller saw, 0 = none yet); the exam moves
    ready_for_review → in_review; an audit event (``actor``: the request, for IP and path;
    defaults to ``user``); under an open amendment the change is listed on it. Raises StaleVersion
    if someone changed the dating since, ExamLocked on a signed exam, ReviewError (naming the
    field) on bad input — and then nothing is saved.
    """
    _check_reviewer(user)
    basis = _dating_basis(basis)
    seen = _version(version)
    comment = _clean_text(comment, "comment", MAX_COMMENT)
    given_weeks = ga_weeks not in (None, "")
    given_lmp = lmp not in (None, "")
    if given_weeks == given_lmp:
        raise ReviewError(
            "give either the GA on the exam date (ga_weeks, e.g. 20+3) or the LMP date "
            f"(lmp, YYYY-MM-DD){', not both' if given_weeks else ''}",
            "ga_weeks",
        )
    if given_lmp and basis != DatingBasis.LMP:
        raise ReviewError(
            "an LMP date dates the pregnancy by the last menstrual period: choose basis "
            "lmp, or give the GA on the exam date (ga_weeks) for this basis",
            "lmp",
        )
    if basis == DatingBasis.OTHER and not comment:
        raise ReviewError(
            "basis 'other' needs a comment saying what the dating rests on", "comment"
        )
    lmp_date = _lmp_date(lmp) if given_lmp else None
    ga_days = _ga_days_from_weeks(ga_weeks) if given_weeks else 0  # 0: from the LMP, below
    with transaction.atomic():
        locked, amendment = _lock_open_study(study)
        if lmp_date is not None:
            if locked.study_date is None:
                raise ReviewError(
                    "this exam has no study date, so an LMP gives no GA on it; enter the GA on "
                    "the exam date (ga_weeks) instead",
                    "lmp",
                )
            if lmp_date > locked.study_date:
                raise ReviewError(
                    f"lmp {lmp_date.isoformat()} is after the exam date "
                    f"{locked.study_date.isoformat()}",
                    "lmp",
                )
            ga_days = (locked.study_date - lmp_date).days
        if not DATING_MIN_DAYS <= ga_days <= DATING_MAX_DAYS:
            field = "lmp" if lmp_date is not None else "ga_weeks"
            what = (
                f"lmp {lmp_date.isoformat()} gives {_weeks_days(ga_days)} on the exam date"
                if lmp_date is not None
                else f"ga_weeks {str(ga_weeks).strip()!r} is {_weeks_days(ga_days)}"
            )
            raise ReviewError(
                f"{what}; a GA from dates must be {_weeks_days(DATING_MIN_DAYS)} to "
                f"{_weeks_days(DATING_MAX_DAYS)}",
                field,
            )
        latest = (
            GestationalDating.objects.filter(study=locked)
            .select_related("entered_by")
            .order_by("-version")
            .first()
        )
        current = latest.version if latest else 0
        if seen != current:
            if latest is None:
                raise StaleVersion(
                    "no GA from dates has been entered for this exam yet; send version 0",
                    "version",
                )
            raise _stale(latest.entered_by, latest.entered_at, "the GA from dates")
        _start_review(locked)
        row = GestationalDating.objects.create(
            study=locked,
            version=current + 1,
            basis=basis,
            lmp_date=lmp_date,
            ga_days=ga_days,
            comment=comment,
            entered_by=user,
            amendment=amendment,
        )
        _note_change(
            amendment,
            {
                "what": "GA from dates",
                "basis": basis,
                "ga_days": ga_days,
                "lmp": lmp_date.isoformat() if lmp_date else None,
                "version": row.version,
                "by": user.get_username(),
                "at": row.entered_at.isoformat(),
            },
        )
        lmp_text = f" (LMP {lmp_date.isoformat()})" if lmp_date else ""
        _audit(
            actor or user,
            AuditEvent.Action.UPDATE,
            locked,
            "GA from dates",
            f"{row.ga_weeks_days}{lmp_text} by {row.get_basis_display()} v{row.version}",
        )
    study.refresh_from_db(fields=["status", "status_changed_at"])
    return row


# --------------------------------------------------------------------------------------------
# Sign-off and amendment
# --------------------------------------------------------------------------------------------


def exam_summary(study: Study) -> dict[str, Any]:
    """What a signature covers: patient, exam, every finding with its decision, the physician's
    own measurements and labels, the GA from dates, and the biometry from the final values
    (centiles at the GA from dates). No side effects."""
    decisions = latest_decisions(study)
    patient = study.patient
    findings = []
    for f in ai.ai_findings(study, types=("plane", "measurement", "quality")):
        d = decisions.get((f.type, f.id))
        findings.append(
            {
                "type": f.type,
                "id": f.id,
                "label": f.label,
                "ai_flag": f.flag,
                "ai_value_mm": f.value_mm,
                "confidence": f.confidence,
                "decision": d.action if d else "undecided",
                "edited_label": d.edited_label if d else "",
                "edited_value_mm": d.edited_value_mm if d else None,
                "version": d.version if d else 0,
            }
        )
    rows = final_measurements(study)
    values = chosen_values(rows)
    dating = current_dating(study)
    relabels = [
        {
            "sop": r.instance.sop_instance_uid,
            "frame": r.frame_number,
            "label": r.new_label,
            "ai_label": r.ai_label,
            "version": r.version,
        }
        for r in sorted(
            latest_relabels(study).values(), key=lambda r: (r.instance_id, r.frame_number)
        )
    ]
    undecided = [f for f in findings if f["type"] == "measurement" and f["decision"] == "undecided"]
    amendments = [
        {
            "reason": a.reason,
            "by": a.opened_by.get_username(),
            "at": a.opened_at.isoformat(),
            "changes": len(a.changes),
        }
        for a in study.amendments.select_related("opened_by").order_by("id")
    ]
    return {
        "patient": {"name": patient.name, "patient_id": patient.patient_id},
        "study_instance_uid": study.study_instance_uid,
        "accession_number": study.accession_number,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "findings": findings,
        "measurements": [
            {
                k: r[k]
                for k in (
                    "source",
                    "finding_type",
                    "finding_id",
                    "kind",
                    "state",
                    "ai_value_mm",
                    "final_mm",
                    "final_px",
                )
            }
            for r in rows
        ],
        "final_values_mm": shown_mm(values),
        "gestational_dating": dating_block(dating),
        # Centiles at the GA from dates; without one there are none (no circular centiles).
        "biometry": biometry(values, ga_days=dating_ga_days(dating)),
        "relabels": relabels,
        "amendments": amendments,
        "undecided_measurements": len(undecided),
        "counts": {
            "findings": len(findings),
            "accepted": sum(f["decision"] == "accepted" for f in findings),
            "edited": sum(f["decision"] == "edited" for f in findings),
            "rejected": sum(f["decision"] == "rejected" for f in findings),
            "undecided": sum(f["decision"] == "undecided" for f in findings),
            "physician_measurements": sum(r["source"] == "physician" for r in rows),
        },
    }


def content_hash(summary: dict[str, Any]) -> str:
    canonical = json.dumps(summary, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sign_exam(
    *, study: Study, user: Any, password: Any, expected_hash: Any, actor: Any = None
) -> SignOff:
    """Sign the exam as summarised (``expected_hash`` = the hash shown in the sign-off dialog).

    Checks the password again, refuses while a measurement is undecided, and refuses (409) if the
    content changed since the dialog was opened. Side effects in one transaction: a SignOff row
    (summary snapshot + SHA-256), status → signed (closing an open amendment), audit event.
    """
    _check_reviewer(user)
    if not isinstance(password, str) or not password:
        raise ReviewError("enter your password to sign", "password")
    if not user.check_password(password):
        raise ReviewError("the password is not correct", "password")
    if not isinstance(expected_hash, str) or len(expected_hash) != 64:
        raise ReviewError(
            "the summary you confirm is missing; reopen the sign-off dialog", "content_hash"
        )
    with transaction.atomic():
        locked, amendment = _lock_open_study(study)
        summary = exam_summary(locked)
        digest = content_hash(summary)
        if digest != expected_hash:
            last = (
                FindingDecision.objects.filter(study=locked)
                .select_related("decided_by")
                .order_by("-decided_at")
                .first()
            )
            changes = [(last.decided_at, last.decided_by)] if last else []
            dating = current_dating(locked)
            if dating is not None:
                changes.append((dating.entered_at, dating.entered_by))
            at, by = max(changes, key=lambda c: c[0]) if changes else (None, None)
            who = (
                f" (last change by {by.get_username()} at {timezone.localtime(at):%Y-%m-%d %H:%M:%S %Z})"
                if by is not None
                else ""
            )
            raise Conflict(
                f"the exam changed since the summary was shown{who}; review the new summary and sign again",
                "content_hash",
            )
        if summary["undecided_measurements"]:
            raise ReviewError(
                f"{summary['undecided_measurements']} measurement(s) are still undecided; accept, "
                "edit or reject each before signing",
                "findings",
            )
        if locked.status == ExamStatus.READY_FOR_REVIEW:
            locked.transition_to(ExamStatus.IN_REVIEW)
        sequence = (locked.signoffs.aggregate(n=Max("sequence"))["n"] or 0) + 1
        signoff = SignOff.objects.create(
            study=locked,
            sequence=sequence,
            signed_by=user,
            summary=summary,
            content_hash=digest,
        )
        locked.transition_to(ExamStatus.SIGNED)
        if amendment is not None:
            amendment.closed_by = signoff
            amendment.save(update_fields=["closed_by"])
        _audit(
            actor or user,
            AuditEvent.Action.UPDATE,
            locked,
            "sign-off",
            f"signed #{sequence} sha256 {digest[:16]}…",
        )
        # PDF, DICOM SR/SEG and the PACS write-back are built after commit (Celery); a failure
        # there never undoes or blocks the signature (webapp.reports.services.schedule_reports).
        from webapp.reports.services import schedule_reports

        schedule_reports(signoff=signoff)
    study.refresh_from_db(fields=["status", "status_changed_at"])
    return signoff


def amend_exam(*, study: Study, user: Any, reason: Any, actor: Any = None) -> Amendment:
    """Open an amendment of a signed exam. Side effects: an Amendment row (reason, who, when,
    the sign-off it amends), status signed → amended (changes allowed again, each listed on the
    amendment), audit event. Refused without a reason or when the exam is not signed."""
    _check_reviewer(user)
    reason = _clean_text(reason, "reason", MAX_REASON)
    if len(reason) < 5:
        raise ReviewError("give the reason for the amendment (at least a few words)", "reason")
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status != ExamStatus.SIGNED:
            raise Conflict(
                f"only a signed exam can be amended; this one is {locked.get_status_display().lower()}",
                "status",
            )
        last = locked.signoffs.order_by("-sequence").first()
        amendment = Amendment.objects.create(
            study=locked, reason=reason, opened_by=user, amends=last
        )
        locked.transition_to(ExamStatus.AMENDED)
        _audit(actor or user, AuditEvent.Action.UPDATE, locked, "amendment opened", reason[:500])
    study.refresh_from_db(fields=["status", "status_changed_at"])
    return amendment
