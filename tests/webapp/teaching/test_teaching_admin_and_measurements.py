"""Rubric versions through the Django admin (a used version is read-only; the action creates the
next version) and the dashboard's measurement agreement from physicians' edits."""

from __future__ import annotations

import pytest
from teaching_support import answers_for, build_exam

from webapp.teaching import services
from webapp.teaching.models import Rubric

pytestmark = pytest.mark.django_db


def test_admin_creates_a_new_version_and_cannot_edit_a_used_one(
    client, make_user, trainee, supervisors
):
    admin = make_user("admin", username="boss")
    v1 = services.active_rubric()
    client.force_login(admin)
    page = client.get(f"/admin/teaching/rubric/{v1.pk}/change/").content.decode()
    assert 'name="criteria-0-wording"' in page  # unused: editable

    study = build_exam(sonographer=trainee)
    services.submit_grade(study=study, supervisor=supervisors[0], answers=answers_for(study))
    page = client.get(f"/admin/teaching/rubric/{v1.pk}/change/").content.decode()
    assert 'name="criteria-0-wording"' not in page  # used: read-only
    assert "Symmetrical plane" in page

    response = client.post(
        "/admin/teaching/rubric/",
        {"action": "create_new_version", "_selected_action": [str(v1.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert (
        "Salomon 2006 biometry image score v2 created from version 1" in response.content.decode()
    )
    v2 = Rubric.objects.get(name=v1.name, version=2)
    assert v2.active and v2.created_by == admin and v2.criteria.count() == 18
    assert not Rubric.objects.get(pk=v1.pk).active
    page = client.get(f"/admin/teaching/rubric/{v2.pk}/change/").content.decode()
    assert 'name="criteria-0-wording"' in page


def test_dashboard_measurement_agreement_from_physician_edits(trainee, supervisors, make_user):
    from webapp.analysis.models import MeasurementFinding
    from webapp.review.models import FindingDecision

    study = build_exam(sonographer=trainee)
    services.submit_grade(study=study, supervisor=supervisors[0], answers=answers_for(study))
    board = services.dashboard(trainee=trainee)
    assert board.measurement_agreement == []  # no physician edits: omitted

    doctor = make_user("obstetrician")
    run = study.analysis_runs.get()
    head = study.series.get().instances.get(instance_number=1)
    femur = study.series.get().instances.get(instance_number=3)
    hc = MeasurementFinding.objects.create(
        run=run, instance=head, frame_number=1, kind="HC", geometry_px={}, value_px=500.0,
        value_mm=172.0,
    )  # fmt: skip
    fl = MeasurementFinding.objects.create(
        run=run, instance=femur, frame_number=1, kind="FL", geometry_px={}, value_px=200.0,
        value_mm=33.0,
    )  # fmt: skip
    common = {"study": study, "finding_type": "measurement", "decided_by": doctor}
    # HC: edited to 175 then 176 (latest counts): 172 - 176 = -4 mm
    FindingDecision.objects.create(
        **common,
        finding_id=hc.pk,
        measurement=hc,
        version=1,
        action="edited",
        edited_value_mm=175.0,
    )
    FindingDecision.objects.create(
        **common,
        finding_id=hc.pk,
        measurement=hc,
        version=2,
        action="edited",
        edited_value_mm=176.0,
    )
    # FL accepted: not a correction, not counted
    FindingDecision.objects.create(
        **common, finding_id=fl.pk, measurement=fl, version=1, action="accepted"
    )
    board = services.dashboard(trainee=trainee)
    assert board.measurement_agreement == [
        {"kind": "HC", "n": 1, "mean_abs_diff_mm": 4.0, "mean_diff_mm": -4.0}
    ]
    assert "measurement_agreement,trainee_a,HC,1,4.0000,-4.0000" in services.dashboard_csv(
        board=board
    )
