"""Decisions on the AI's findings (rows of webapp.analysis): separate records, FK to the finding,
edited geometry recomputed by the calibration rule, AI rows never changed."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from webapp.analysis.models import MeasurementFinding
from webapp.review import findings, services
from webapp.review.models import FindingDecision


@pytest.fixture
def dr(make_user):
    return make_user("obstetrician", username="dr_ai")


def test_findings_of_the_newest_finished_run_are_read(analysed_exam):
    study = analysed_exam()
    found = findings.ai_findings(study)
    kinds = sorted(f.label for f in found if f.type == "measurement")
    assert kinds == ["BPD", "FL", "HC", "OFD"]
    planes = {f.label: f.flag for f in found if f.type == "plane"}
    assert planes == {
        "head_trans_thalamic": "optimal",
        "abdomen_ac": "sub_optimal",
        "femur_fl": "optimal",
    }
    hc = next(f for f in found if f.label == "HC")
    assert hc.value_mm == pytest.approx(250.6, abs=1.0)  # phantom truth HC 250.60 mm


def test_editing_an_ai_measurement_keeps_the_ai_row_and_recomputes(analysed_exam, dr):
    study = analysed_exam()
    hc = MeasurementFinding.objects.get(run__study=study, kind="HC")
    before = (hc.value_mm, dict(hc.geometry_px))
    bigger = {**hc.geometry_px, "a": hc.geometry_px["a"] * 1.05}
    d = services.decide_finding(
        study=study,
        finding_type="measurement",
        finding_id=hc.pk,
        action="edited",
        version=0,
        user=dr,
        geometry_px=bigger,
    )
    hc.refresh_from_db()
    assert (hc.value_mm, hc.geometry_px) == before  # the AI's proposal is untouched
    assert d.measurement_id == hc.pk
    assert d.ai_snapshot["value_mm"] == pytest.approx(before[0])
    assert d.edited_value_mm > before[0]
    ga_hc = [g for g in d.derived["gestational_age"] if g["formula"]["key"] == "ga.hadlock1984.hc"]
    assert ga_hc and ga_hc[0]["inputs"]["hc_mm"] == pytest.approx(d.edited_value_mm, abs=1e-3)


def test_plane_and_quality_decisions(analysed_exam, dr):
    study = analysed_exam()
    plane = next(
        f for f in findings.ai_findings(study) if f.type == "plane" and f.label == "abdomen_ac"
    )
    d = services.decide_finding(
        study=study,
        finding_type="plane",
        finding_id=plane.id,
        action="edited",
        version=0,
        user=dr,
        label="femur_fl",
    )
    assert d.best_frame_id == plane.id and d.edited_label == "femur_fl"
    with pytest.raises(services.ReviewError, match="needs label"):
        services.decide_finding(
            study=study,
            finding_type="plane",
            finding_id=plane.id,
            action="edited",
            version=1,
            user=dr,
            label="nonsense",
        )
    q = next(f for f in findings.ai_findings(study) if f.type == "quality")
    d = services.decide_finding(
        study=study, finding_type="quality", finding_id=q.id, action="rejected", version=0, user=dr
    )
    assert d.quality_id == q.id
    with pytest.raises(services.NotFound):
        services.decide_finding(
            study=study,
            finding_type="quality",
            finding_id=999999,
            action="accepted",
            version=0,
            user=dr,
        )


def test_a_finding_of_another_exam_is_not_found(analysed_exam, dr):
    a, b = analysed_exam(), analysed_exam()
    hc_b = MeasurementFinding.objects.get(run__study=b, kind="HC")
    with pytest.raises(services.NotFound, match="not part of this exam"):
        services.decide_finding(
            study=a,
            finding_type="measurement",
            finding_id=hc_b.pk,
            action="accepted",
            version=0,
            user=dr,
        )


def test_database_refuses_a_decision_without_its_finding(analysed_exam, dr):
    study = analysed_exam()
    with pytest.raises(IntegrityError), transaction.atomic():
        FindingDecision.objects.create(
            study=study,
            finding_type="measurement",
            finding_id=1,
            version=1,
            action="accepted",
            decided_by=dr,
        )


def test_sign_off_needs_every_measurement_decided(analysed_exam, dr):
    study = analysed_exam()
    summary = services.exam_summary(study)
    assert summary["undecided_measurements"] == 4
    with pytest.raises(services.ReviewError, match="4 measurement"):
        services.sign_exam(
            study=study, user=dr, password="pw", expected_hash=services.content_hash(summary)
        )
    for m in MeasurementFinding.objects.filter(run__study=study):
        services.decide_finding(
            study=study,
            finding_type="measurement",
            finding_id=m.pk,
            action="accepted",
            version=0,
            user=dr,
        )
    summary = services.exam_summary(study)
    signoff = services.sign_exam(
        study=study, user=dr, password="pw", expected_hash=services.content_hash(summary)
    )
    assert set(signoff.summary["final_values_mm"]) == {"HC", "BPD", "OFD", "FL"}
    # no AC in this exam: no EFW formula applies, and the GA formulas fed by HC/BPD/FL do
    biometry = signoff.summary["biometry"]
    assert biometry["estimated_fetal_weight"] == []
    assert {g["formula"]["key"] for g in biometry["gestational_age"]} >= {
        "ga.hadlock1984.hc",
        "ga.hadlock1984.bpd",
        "ga.hadlock1984.fl",
        "ga.intergrowth21.hc",
    }
