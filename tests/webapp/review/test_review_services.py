"""Review services on real ingested phantom exams: values by the calibration rule, versions,
sign-off, immutability, amendments, roles, audit, and nothing half-saved on bad input."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from inference.geometry import ramanujan_perimeter
from webapp.exams.models import AuditEvent, ExamStatus
from webapp.review import services
from webapp.review.models import FindingDecision, PhysicianMeasurement, PlaneRelabel, SignOff


def first_instance(study):
    return study.series.first().instances.order_by("instance_number").first()


def region_centre(instance):
    region = instance.us_regions.first()
    return (region.x0 + region.x1) / 2, (region.y0 + region.y1) / 2, region


def small_ellipse(instance, a=40.0, b=30.0):
    cx, cy, _ = region_centre(instance)
    return {"cx": cx, "cy": cy, "a": a, "b": b, "angle": 0.3}


@pytest.fixture
def obstetrician(make_user):
    return make_user("obstetrician", username="dr_a")


def test_added_hc_inside_region_has_mm_from_that_region(make_exam, obstetrician):
    study = make_exam()
    instance = first_instance(study)
    _, _, region = region_centre(instance)
    m = services.add_measurement(
        study=study,
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        kind="HC",
        geometry_px=small_ellipse(instance),
        user=obstetrician,
    )
    mm_per_px = region.physical_delta_x * 10
    assert m.value_px == pytest.approx(ramanujan_perimeter(40, 30), rel=1e-9)
    assert m.value_mm == pytest.approx(ramanujan_perimeter(40, 30) * mm_per_px, rel=1e-4)
    assert m.calibration["region_index"] == region.index
    assert m.geometry_mm["a"] == pytest.approx(40 * mm_per_px, rel=1e-4)
    study.refresh_from_db()
    assert study.status == ExamStatus.IN_REVIEW


def test_ellipse_leaving_the_region_is_px_only(make_exam, obstetrician):
    study = make_exam()
    instance = first_instance(study)
    region = instance.us_regions.first()
    # centred on the region's left edge: half the outline lies outside the calibrated region
    geometry = {
        "cx": region.x0 + 1,
        "cy": (region.y0 + region.y1) / 2,
        "a": 30,
        "b": 20,
        "angle": 0,
    }
    m = services.add_measurement(
        study=study,
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        kind="AC",
        geometry_px=geometry,
        user=obstetrician,
    )
    assert m.value_mm is None
    assert m.calibration is None
    preview = services.preview_measurement(
        study=study,
        finding_type="new",
        finding_id=None,
        kind="AC",
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        geometry_px=geometry,
    )
    assert preview["value_mm"] is None
    assert preview["px_only_reason"].startswith("px only — no calibration covers these points")


def test_length_and_biometry_recomputed_from_inference(make_exam, obstetrician):
    study = make_exam()
    instance = first_instance(study)
    cx, cy, region = region_centre(instance)
    mm_per_px = region.physical_delta_x * 10
    half = 20.0 / mm_per_px  # a 40 mm femur
    preview = services.preview_measurement(
        study=study,
        finding_type="new",
        finding_id=None,
        kind="FL",
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        geometry_px={"p1": [cx - half, cy], "p2": [cx + half, cy]},
    )
    assert preview["value_mm"] == pytest.approx(40.0, abs=0.01)
    hadlock = [g for g in preview["biometry"]["gestational_age"] if "FL" in g["formula"]["name"]]
    # Hadlock 1984 FL: 10.35 + 2.460x + 0.170x² weeks, x in cm
    assert hadlock and hadlock[0]["ga_weeks"] == pytest.approx(
        10.35 + 2.46 * 4 + 0.17 * 16, abs=0.01
    )


def test_bad_geometry_is_refused_and_nothing_saved(make_exam, obstetrician):
    study = make_exam()
    instance = first_instance(study)
    before = (PhysicianMeasurement.objects.count(), AuditEvent.objects.count())
    cases = [
        ({"cx": "x", "cy": 1, "a": 1, "b": 1}, "geometry_px.cx"),
        ({"cx": 10, "cy": 10, "a": -1, "b": 1}, "geometry_px.a"),
        ({"cx": 1e6, "cy": 10, "a": 5, "b": 5}, "geometry_px.centre"),
        ([1, 2], "geometry_px"),
        ({"cx": float("nan"), "cy": 1, "a": 1, "b": 1}, "geometry_px.cx"),
    ]
    for geometry, field in cases:
        with pytest.raises(services.ReviewError) as err:
            services.add_measurement(
                study=study,
                sop_instance_uid=instance.sop_instance_uid,
                frame=1,
                kind="HC",
                geometry_px=geometry,
                user=obstetrician,
            )
        assert err.value.field == field, (geometry, err.value.message)
    with pytest.raises(services.ReviewError, match="frame 9 does not exist"):
        services.add_measurement(
            study=study,
            sop_instance_uid=instance.sop_instance_uid,
            frame=9,
            kind="HC",
            geometry_px=small_ellipse(instance),
            user=obstetrician,
        )
    with pytest.raises(services.ReviewError, match="not part of this exam"):
        services.add_measurement(
            study=study,
            sop_instance_uid="1.2.3",
            frame=1,
            kind="HC",
            geometry_px=small_ellipse(instance),
            user=obstetrician,
        )
    with pytest.raises(services.ReviewError, match="unknown measurement 'XX'"):
        services.add_measurement(
            study=study,
            sop_instance_uid=instance.sop_instance_uid,
            frame=1,
            kind="XX",
            geometry_px=small_ellipse(instance),
            user=obstetrician,
        )
    assert (PhysicianMeasurement.objects.count(), AuditEvent.objects.count()) == before
    study.refresh_from_db()
    assert study.status == ExamStatus.READY_FOR_REVIEW


def test_only_obstetricians_change_exams(make_exam, make_user):
    study = make_exam()
    instance = first_instance(study)
    for role in ("sonographer", "supervisor", "admin"):
        with pytest.raises(services.NotAllowed):
            services.add_measurement(
                study=study,
                sop_instance_uid=instance.sop_instance_uid,
                frame=1,
                kind="HC",
                geometry_px=small_ellipse(instance),
                user=make_user(role),
            )
    assert not PhysicianMeasurement.objects.exists()


def test_decisions_are_appended_with_versions_and_stale_versions_are_refused(
    make_exam, obstetrician, make_user
):
    study = make_exam()
    instance = first_instance(study)
    m = services.add_measurement(
        study=study,
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        kind="HC",
        geometry_px=small_ellipse(instance),
        user=obstetrician,
    )
    first = services.decide_finding(
        study=study,
        finding_type="physician_measurement",
        finding_id=m.pk,
        action="edited",
        version=0,
        user=obstetrician,
        geometry_px=small_ellipse(instance, a=50, b=35),
    )
    assert first.version == 1
    assert first.edited_value_px == pytest.approx(ramanujan_perimeter(50, 35), rel=1e-9)
    assert first.ai_snapshot["value_px"] == pytest.approx(m.value_px)
    assert first.derived["inputs"]["hc_mm"] == pytest.approx(first.edited_value_mm, abs=1e-3)
    other = make_user("obstetrician", username="dr_b")
    # dr_b still has version 0 on screen: refused, naming who changed it
    with pytest.raises(services.StaleVersion, match=r"changed by dr_a at .*; reload"):
        services.decide_finding(
            study=study,
            finding_type="physician_measurement",
            finding_id=m.pk,
            action="rejected",
            version=0,
            user=other,
        )
    second = services.decide_finding(
        study=study,
        finding_type="physician_measurement",
        finding_id=m.pk,
        action="rejected",
        version=1,
        user=other,
    )
    assert second.version == 2
    rows = list(FindingDecision.objects.filter(study=study).order_by("version"))
    assert [(r.version, r.action, r.decided_by.username) for r in rows] == [
        (1, "edited", "dr_a"),
        (2, "rejected", "dr_b"),
    ]
    # the first decision is untouched (append-only history)
    assert rows[0].edited_value_px == pytest.approx(ramanujan_perimeter(50, 35), rel=1e-9)


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_at_the_same_moment_never_lose_an_update(make_exam, make_user):
    study = make_exam()
    instance = first_instance(study)
    a = make_user("obstetrician", username="dr_x")
    b = make_user("obstetrician", username="dr_y")
    m = services.add_measurement(
        study=study,
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        kind="HC",
        geometry_px=small_ellipse(instance),
        user=a,
    )
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(user, action):
        barrier.wait()
        try:
            services.decide_finding(
                study=study,
                finding_type="physician_measurement",
                finding_id=m.pk,
                action=action,
                version=0,
                user=user,
            )
            outcomes[user.username] = "saved"
        except services.StaleVersion as exc:
            outcomes[user.username] = str(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(a, "accepted")),
        threading.Thread(target=decide, args=(b, "rejected")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    saved = [u for u, o in outcomes.items() if o == "saved"]
    refused = [o for o in outcomes.values() if o != "saved"]
    assert len(saved) == 1 and len(refused) == 1
    assert f"changed by {saved[0]}" in refused[0]
    assert FindingDecision.objects.filter(study=study).count() == 1


def test_relabel_frame_versions(make_exam, obstetrician):
    study = make_exam()
    instance = first_instance(study)
    r1 = services.relabel_frame(
        study=study,
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        new_label="abdomen_ac",
        version=0,
        user=obstetrician,
        ai_label="head_trans_thalamic",
    )
    r2 = services.relabel_frame(
        study=study,
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        new_label="femur_fl",
        version=1,
        user=obstetrician,
    )
    assert (r1.version, r2.version) == (1, 2)
    with pytest.raises(services.StaleVersion):
        services.relabel_frame(
            study=study,
            sop_instance_uid=instance.sop_instance_uid,
            frame=1,
            new_label="abdomen_ac",
            version=1,
            user=obstetrician,
        )
    with pytest.raises(services.ReviewError, match="new_label must be a view key"):
        services.relabel_frame(
            study=study,
            sop_instance_uid=instance.sop_instance_uid,
            frame=1,
            new_label="brain",
            version=2,
            user=obstetrician,
        )
    assert PlaneRelabel.objects.filter(study=study).count() == 2


def test_sign_off_locks_the_exam_and_amendment_reopens_it_on_the_record(make_exam, obstetrician):
    study = make_exam()
    instance = first_instance(study)
    m = services.add_measurement(
        study=study,
        sop_instance_uid=instance.sop_instance_uid,
        frame=1,
        kind="HC",
        geometry_px=small_ellipse(instance),
        user=obstetrician,
    )
    summary = services.exam_summary(study)
    digest = services.content_hash(summary)
    with pytest.raises(services.ReviewError, match="password is not correct"):
        services.sign_exam(study=study, user=obstetrician, password="nope", expected_hash=digest)
    with pytest.raises(services.Conflict, match="changed since the summary was shown"):
        services.sign_exam(study=study, user=obstetrician, password="pw", expected_hash="0" * 64)
    signoff = services.sign_exam(
        study=study, user=obstetrician, password="pw", expected_hash=digest
    )
    study.refresh_from_db()
    assert study.status == ExamStatus.SIGNED
    assert signoff.content_hash == digest and signoff.sequence == 1
    assert signoff.summary["final_values_mm"]["HC"] == round(
        m.value_mm, 1
    )  # signed as shown, 0.1 mm

    # immutable: every change is refused with a clear reason, nothing saved
    with pytest.raises(services.ExamLocked, match=r"signed by dr_a .* open an amendment"):
        services.decide_finding(
            study=study,
            finding_type="physician_measurement",
            finding_id=m.pk,
            action="rejected",
            version=0,
            user=obstetrician,
        )
    with pytest.raises(services.ExamLocked):
        services.add_measurement(
            study=study,
            sop_instance_uid=instance.sop_instance_uid,
            frame=1,
            kind="AC",
            geometry_px=small_ellipse(instance),
            user=obstetrician,
        )
    assert not FindingDecision.objects.filter(study=study).exists()

    with pytest.raises(services.ReviewError, match="reason"):
        services.amend_exam(study=study, user=obstetrician, reason="  ")
    amendment = services.amend_exam(
        study=study, user=obstetrician, reason="HC re-measured on review"
    )
    study.refresh_from_db()
    assert study.status == ExamStatus.AMENDED
    services.decide_finding(
        study=study,
        finding_type="physician_measurement",
        finding_id=m.pk,
        action="rejected",
        version=0,
        user=obstetrician,
    )
    amendment.refresh_from_db()
    assert [c["what"] for c in amendment.changes] == ["decision"]
    summary2 = services.exam_summary(study)
    assert summary2["amendments"][0]["reason"] == "HC re-measured on review"
    second = services.sign_exam(
        study=study,
        user=obstetrician,
        password="pw",
        expected_hash=services.content_hash(summary2),
    )
    amendment.refresh_from_db()
    assert amendment.closed_by == second and second.sequence == 2
    assert "HC" not in second.summary["final_values_mm"]
    assert SignOff.objects.filter(study=study).count() == 2
    details = list(
        AuditEvent.objects.filter(study_instance_uid=study.study_instance_uid).values_list(
            "detail", flat=True
        )
    )
    assert any(d.startswith("sign-off: signed #1") for d in details)
    assert any(d.startswith("amendment opened") for d in details)


def test_exam_not_ready_cannot_be_reviewed(make_exam, obstetrician):
    study = make_exam(ready=False)
    instance = first_instance(study)
    with pytest.raises(services.ExamLocked, match="not ready for review"):
        services.add_measurement(
            study=study,
            sop_instance_uid=instance.sop_instance_uid,
            frame=1,
            kind="HC",
            geometry_px=small_ellipse(instance),
            user=obstetrician,
        )
