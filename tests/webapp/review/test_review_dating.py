"""Gestational age from dates: a stored, versioned, audited exam fact that size centiles are
placed at (a GA from the exam's own measurements would make them circular).

Each test reads as a rule of the review page: how a GA from dates is entered (weeks+days or an
LMP), who may change it and when, what is refused (and that nothing is then saved), and that the
page state, the preview, the decisions and the signed summary all place centiles at it.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse

from inference.biometry import compute_all
from webapp.exams.models import AuditEvent, ExamStatus
from webapp.review import services
from webapp.review.models import Amendment, GestationalDating
from webapp.review.state import exam_state


@pytest.fixture
def obstetrician(make_user):
    return make_user("obstetrician", username="dr_a")


def dating_events(study):
    return list(
        AuditEvent.objects.filter(
            study_instance_uid=study.study_instance_uid, detail__startswith="GA from dates"
        ).values_list("detail", flat=True)
    )


def test_a_ga_in_weeks_and_days_is_stored_as_whole_days_on_the_exam_date(make_exam, obstetrician):
    study = make_exam()
    row = services.set_gestational_dating(
        study=study,
        basis="crl_scan",
        ga_weeks="20+3",
        version=0,
        user=obstetrician,
        comment="CRL 45 mm at 11+2",
    )
    assert (row.version, row.ga_days, row.ga_weeks_days) == (1, 143, "20w3d")
    assert row.basis == "crl_scan" and row.lmp_date is None
    assert row.comment == "CRL 45 mm at 11+2" and row.entered_by == obstetrician
    assert services.current_dating(study) == row
    study.refresh_from_db()
    assert study.status == ExamStatus.IN_REVIEW  # entering the GA starts the review
    assert dating_events(study) == ["GA from dates: 20w3d by First-trimester scan (CRL) v1"]


def test_an_lmp_gives_the_ga_on_the_exam_date(make_exam, obstetrician):
    study = make_exam()
    lmp = study.study_date - dt.timedelta(days=150)
    row = services.set_gestational_dating(
        study=study, basis="lmp", lmp=lmp.isoformat(), version=0, user=obstetrician
    )
    assert (row.ga_days, row.ga_weeks_days, row.lmp_date) == (150, "21w3d", lmp)
    block = services.dating_block(row)
    assert block["lmp"] == lmp.isoformat() and block["basis_display"] == "Last menstrual period"
    assert dating_events(study) == [
        f"GA from dates: 21w3d (LMP {lmp.isoformat()}) by Last menstrual period v1"
    ]


def test_a_stale_version_is_refused_naming_who_changed_it_and_history_is_kept(
    make_exam, obstetrician, make_user
):
    study = make_exam()
    with pytest.raises(
        services.StaleVersion, match=r"no GA from dates has been entered .* yet; send version 0"
    ):
        services.set_gestational_dating(
            study=study, basis="lmp", ga_weeks="20+0", version=2, user=obstetrician
        )
    services.set_gestational_dating(
        study=study, basis="lmp", ga_weeks="20+0", version=0, user=obstetrician
    )
    other = make_user("obstetrician", username="dr_b")
    # dr_b still has "none entered" (version 0) on screen
    with pytest.raises(
        services.StaleVersion, match=r"GA from dates was changed by dr_a at .*; reload"
    ):
        services.set_gestational_dating(
            study=study, basis="crl_scan", ga_weeks="21+0", version=0, user=other
        )
    second = services.set_gestational_dating(
        study=study, basis="crl_scan", ga_weeks="21+0", version=1, user=other
    )
    assert second.version == 2 and services.current_dating(study) == second
    rows = GestationalDating.objects.filter(study=study).order_by("version")
    assert [(r.version, r.ga_days, r.entered_by.username) for r in rows] == [
        (1, 140, "dr_a"),
        (2, 147, "dr_b"),
    ]


def test_a_signed_exam_refuses_a_new_dating_until_an_amendment_is_opened(make_exam, obstetrician):
    study = make_exam()
    services.sign_exam(
        study=study,
        user=obstetrician,
        password="pw",
        expected_hash=services.content_hash(services.exam_summary(study)),
    )
    with pytest.raises(services.ExamLocked, match=r"signed by dr_a .* open an amendment"):
        services.set_gestational_dating(
            study=study, basis="lmp", ga_weeks="20+3", version=0, user=obstetrician
        )
    assert not GestationalDating.objects.filter(study=study).exists()
    amendment = services.amend_exam(
        study=study, user=obstetrician, reason="LMP given by the patient after signing"
    )
    row = services.set_gestational_dating(
        study=study, basis="lmp", ga_weeks="20+3", version=0, user=obstetrician
    )
    amendment.refresh_from_db()
    assert row.amendment == amendment
    assert [(c["what"], c["ga_days"], c["version"]) for c in amendment.changes] == [
        ("GA from dates", 143, 1)
    ]
    assert Amendment.objects.filter(study=study).count() == 1


def test_bad_input_is_refused_with_an_error_naming_field_and_value_and_nothing_is_saved(
    make_exam, obstetrician, make_user
):
    study = make_exam()
    date = study.study_date
    after = (date + dt.timedelta(days=1)).isoformat()
    long_ago = (date - dt.timedelta(days=47 * 7 + 2)).isoformat()
    cases = [
        ({"basis": "lmp", "ga_weeks": "60+0"}, "ga_weeks", r"'60\+0' is 60w0d; .* 10w0d to 44w0d"),
        ({"basis": "lmp", "ga_weeks": "8+2"}, "ga_weeks", r"'8\+2' is 8w2d; .* 10w0d to 44w0d"),
        ({"basis": "lmp", "ga_weeks": "20+9"}, "ga_weeks", "days after '\\+' must be 0-6"),
        ({"basis": "lmp", "ga_weeks": "twenty"}, "ga_weeks", "'twenty' is not a gestational age"),
        ({"basis": "lmp", "ga_weeks": "20.5"}, "ga_weeks", "not a whole number of days"),
        ({"basis": "lmp", "ga_weeks": "nan"}, "ga_weeks", "not a whole number of days"),
        ({"basis": "lmp", "lmp": after}, "lmp", f"lmp {after} is after the exam date {date}"),
        ({"basis": "lmp", "lmp": long_ago}, "lmp", f"lmp {long_ago} gives 47w2d on the exam date"),
        ({"basis": "lmp", "lmp": "25/11/2026"}, "lmp", "'25/11/2026' is not a date; .*YYYY-MM-DD"),
        ({"basis": "lmp", "ga_weeks": "20+3", "lmp": long_ago}, "ga_weeks", "not both"),
        ({"basis": "lmp"}, "ga_weeks", "give either the GA on the exam date .* or the LMP date"),
        ({"basis": "lmp", "ga_weeks": "", "lmp": ""}, "ga_weeks", "give either"),
        (
            {"basis": "ultrasound", "ga_weeks": "20+3"},
            "basis",
            r"basis must be one of: lmp \(Last menstrual period\), crl_scan \(First-trimester "
            r"scan \(CRL\)\), assisted_conception \(Assisted conception date\), other \(Other\)",
        ),
        ({"basis": "crl_scan", "lmp": long_ago}, "lmp", "choose basis lmp"),
        ({"basis": "other", "ga_weeks": "20+3"}, "comment", "'other' needs a comment"),
        ({"basis": "lmp", "ga_weeks": "20+3", "version": -1}, "version", "whole number ≥ 0"),
    ]
    before = (GestationalDating.objects.count(), AuditEvent.objects.count())
    for kwargs, field, message in cases:
        kwargs = {"version": 0, **kwargs}
        with pytest.raises(services.ReviewError, match=message) as err:
            services.set_gestational_dating(study=study, user=obstetrician, **kwargs)
        assert err.value.field == field, (kwargs, err.value.message)
        assert err.value.status == 400
    for role in ("sonographer", "supervisor", "admin"):
        with pytest.raises(services.NotAllowed):
            services.set_gestational_dating(
                study=study, basis="lmp", ga_weeks="20+3", version=0, user=make_user(role)
            )
    assert (GestationalDating.objects.count(), AuditEvent.objects.count()) == before
    study.refresh_from_db()
    assert study.status == ExamStatus.READY_FOR_REVIEW


def test_an_exam_without_a_study_date_takes_a_ga_but_not_an_lmp(make_exam, obstetrician):
    study = make_exam()
    study.study_date = None
    study.save(update_fields=["study_date"])
    with pytest.raises(services.ReviewError, match="no study date") as err:
        services.set_gestational_dating(
            study=study, basis="lmp", lmp="2026-01-01", version=0, user=obstetrician
        )
    assert err.value.field == "lmp"
    assert not GestationalDating.objects.filter(study=study).exists()
    row = services.set_gestational_dating(
        study=study, basis="lmp", ga_weeks="19+6", version=0, user=obstetrician
    )
    assert row.ga_days == 139


def test_centiles_in_the_summary_state_preview_and_decisions_are_at_the_stored_dating(
    analysed_exam, obstetrician
):
    study = analysed_exam()
    before = services.exam_summary(study)
    assert before["gestational_dating"] is None
    assert before["biometry"]["centiles"] == []  # no GA from dates: no (circular) centiles
    hc = before["final_values_mm"]["HC"]

    for row in services.final_measurements(study):
        services.decide_finding(
            study=study,
            finding_type=row["finding_type"],
            finding_id=row["finding_id"],
            action="accepted",
            version=0,
            user=obstetrician,
        )
    before = services.exam_summary(study)  # decided, ready to sign, no GA from dates yet
    services.set_gestational_dating(
        study=study, basis="lmp", ga_weeks="22+0", version=0, user=obstetrician
    )
    summary = services.exam_summary(study)
    dating = summary["gestational_dating"]
    assert {
        k: dating[k] for k in ("basis", "ga_days", "ga_weeks_days", "lmp", "by", "version")
    } == {
        "basis": "lmp",
        "ga_days": 154,
        "ga_weeks_days": "22w0d",
        "lmp": None,
        "by": "dr_a",
        "version": 1,
    }
    centiles = {c["measurement"]: c for c in summary["biometry"]["centiles"]}
    assert set(centiles) >= {"hc_mm", "bpd_mm", "fl_mm"}
    assert {c["ga_days"] for c in centiles.values()} == {154.0}
    expected = compute_all({"hc_mm": hc}, ga_days=154).centiles[0]
    assert centiles["hc_mm"]["centile"] == pytest.approx(expected.centile, abs=0.01)
    # the signed content covers the dating: a hash shown before it was entered no longer signs
    assert services.content_hash(summary) != services.content_hash(before)
    with pytest.raises(services.Conflict, match=r"changed since the summary was shown.*dr_a"):
        services.sign_exam(
            study=study,
            user=obstetrician,
            password="pw",
            expected_hash=services.content_hash(before),
        )
    signoff = services.sign_exam(
        study=study, user=obstetrician, password="pw", expected_hash=services.content_hash(summary)
    )
    assert signoff.summary["gestational_dating"]["ga_days"] == 154
    assert services.content_hash(signoff.summary) == signoff.content_hash

    state = exam_state(study, obstetrician)
    assert state["gestational_dating"]["ga_weeks_days"] == "22w0d"
    assert state["biometry"]["centiles"] == summary["biometry"]["centiles"]
    assert [b["key"] for b in state["dating_bases"]] == [
        "lmp",
        "crl_scan",
        "assisted_conception",
        "other",
    ]


def test_preview_and_decisions_place_centiles_at_the_stored_dating_unless_a_ga_is_typed(
    analysed_exam, obstetrician
):
    study = analysed_exam()
    row = next(r for r in services.final_measurements(study) if r["kind"] == "HC")
    finding = services._measurement_target(study, "measurement", row["finding_id"])["finding"]
    services.set_gestational_dating(
        study=study, basis="assisted_conception", ga_weeks="21+2", version=0, user=obstetrician
    )

    def preview(ga_days=None):
        return services.preview_measurement(
            study=study,
            finding_type="measurement",
            finding_id=row["finding_id"],
            kind=None,
            sop_instance_uid=None,
            frame=None,
            geometry_px=finding.geometry_px,
            ga_days=ga_days,
        )["biometry"]["centiles"]

    assert {c["ga_days"] for c in preview()} == {149.0}
    assert {c["ga_days"] for c in preview(ga_days=140.0)} == {140.0}
    decision = services.decide_finding(
        study=study,
        finding_type="measurement",
        finding_id=row["finding_id"],
        action="accepted",
        version=0,
        user=obstetrician,
    )
    assert {c["ga_days"] for c in decision.derived["centiles"]} == {149.0}


def test_the_dating_endpoint_saves_and_answers_errors_as_json(analysed_exam, obstetrician, client):
    study = analysed_exam()
    client.force_login(obstetrician)
    url = reverse("review:dating", args=[study.pk])

    def post(body):
        return client.post(url, data=json.dumps(body), content_type="application/json")

    lmp = (study.study_date - dt.timedelta(days=143)).isoformat()
    r = post({"basis": "lmp", "lmp": lmp, "version": 0})
    assert r.status_code == 200, r.content
    assert r.json() == {
        "ok": True,
        "version": 1,
        "ga_days": 143,
        "ga_weeks_days": "20w3d",
        "exam_status": "in_review",
    }
    r = post({"basis": "lmp", "ga_weeks": "20+3", "version": 0})
    assert r.status_code == 409 and "changed by dr_a" in r.json()["error"]
    r = post({"basis": "lmp", "ga_weeks": "50+0", "version": 1})
    assert r.status_code == 400 and r.json()["field"] == "ga_weeks"
    assert client.get(url).status_code == 405
    state = client.get(reverse("review:state", args=[study.pk])).json()
    assert state["gestational_dating"]["lmp"] == lmp
    assert state["gestational_dating"]["version"] == 1
    page = client.get(reverse("review:exam", args=[study.pk])).content.decode()
    assert 'id="dating-form"' in page and 'id="ga-weeks"' not in page
