"""Review pages and JSON API through Django's test client: roles, audit, clear errors (never a
500), the worklist's filters and queries, the exam page's state."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from webapp.analysis.models import MeasurementFinding
from webapp.exams.models import AuditEvent, ExamStatus
from webapp.review.models import FindingDecision


def post_json(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def dr(make_user, client):
    user = make_user("obstetrician", username="dr_view")
    client.force_login(user)
    return user


def test_worklist_lists_exams_with_planes_and_flags_and_audits(analysed_exam, dr, client):
    study = analysed_exam()
    response = client.get(reverse("review:worklist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert study.patient.name in html
    assert "3/3" in html  # three protocol planes found (one sub-optimal)
    assert "1 sub-optimal" in html
    assert AuditEvent.objects.filter(username="dr_view", object_id="worklist").exists()


def test_worklist_query_count_does_not_grow_with_rows(analysed_exam, dr, client):
    analysed_exam()
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("review:worklist"))
    for _ in range(3):
        analysed_exam()
    with CaptureQueriesContext(connection) as four:
        client.get(reverse("review:worklist"))
    assert len(four) == len(one)


def test_worklist_search_filter_sort_and_bad_values(analysed_exam, dr, client):
    a = analysed_exam()
    b = analysed_exam()
    b.transition_to(ExamStatus.IN_REVIEW)
    html = client.get(reverse("review:worklist"), {"q": a.patient.patient_id}).content.decode()
    assert a.patient.patient_id in html and b.patient.patient_id not in html
    html = client.get(reverse("review:worklist"), {"status": "in_review"}).content.decode()
    assert b.patient.patient_id in html and a.patient.patient_id not in html
    response = client.get(
        reverse("review:worklist"), {"status": "bogus", "sort": "nope", "page": "x"}
    )
    assert response.status_code == 200
    assert "Unknown status filter" in response.content.decode()


def test_next_exam_opens_the_one_waiting_longest(analysed_exam, dr, client):
    first = analysed_exam()
    analysed_exam()
    response = client.get(reverse("review:next"))
    assert response.status_code == 302
    assert response.url == reverse("review:exam", args=[first.pk])


def test_sonographer_sees_only_own_exams(analysed_exam, make_user, client):
    me = make_user("sonographer", username="sono_me")
    mine = analysed_exam(sonographer=me)
    other = analysed_exam(sonographer=make_user("sonographer"))
    client.force_login(me)
    html = client.get(reverse("review:worklist")).content.decode()
    assert mine.patient.patient_id in html and other.patient.patient_id not in html
    assert client.get(reverse("review:exam", args=[mine.pk])).status_code == 200
    assert client.get(reverse("review:exam", args=[other.pk])).status_code == 404
    assert client.get(reverse("review:state", args=[other.pk])).status_code == 404
    # read-only: may not decide
    hc = MeasurementFinding.objects.get(run__study=mine, kind="HC")
    r = post_json(
        client,
        reverse("review:decide", args=[mine.pk]),
        {"finding_type": "measurement", "finding_id": hc.pk, "action": "accepted", "version": 0},
    )
    assert r.status_code == 403 and "obstetricians" in r.json()["error"]


def test_exam_page_and_state(analysed_exam, dr, client):
    study = analysed_exam()
    response = client.get(reverse("review:exam", args=[study.pk]))
    assert response.status_code == 200
    assert b"viewer/viewer.js" in response.content
    state = client.get(reverse("review:state", args=[study.pk])).json()
    assert [p["view_key"] for p in state["planes"]] == [
        "head_trans_thalamic",
        "abdomen_ac",
        "femur_fl",
    ]
    hc = next(m for m in state["measurements"] if m["kind"] == "HC")
    assert hc["overlay"]["kind"] == "ellipse" and hc["overlay"]["frameIndex"] == 0
    fl = next(m for m in state["measurements"] if m["kind"] == "FL")
    assert fl["overlay"]["kind"] == "length" and len(fl["overlay"]["p1"]) == 2
    assert state["undecided_measurements"] == 4
    assert AuditEvent.objects.filter(
        study_instance_uid=study.study_instance_uid, detail="review exam page"
    ).exists()


def test_api_errors_are_json_with_field_and_never_500(analysed_exam, dr, client):
    study = analysed_exam()
    hc = MeasurementFinding.objects.get(run__study=study, kind="HC")
    url = reverse("review:decide", args=[study.pk])
    cases = [
        (
            {"finding_type": "measurement", "finding_id": hc.pk, "action": "maybe", "version": 0},
            400,
            "action",
        ),
        (
            {"finding_type": "nope", "finding_id": hc.pk, "action": "accepted", "version": 0},
            400,
            "finding_type",
        ),
        (
            {"finding_type": "measurement", "finding_id": "12", "action": "accepted", "version": 0},
            400,
            "finding_id",
        ),
        (
            {
                "finding_type": "measurement",
                "finding_id": hc.pk,
                "action": "accepted",
                "version": -1,
            },
            400,
            "version",
        ),
        (
            {
                "finding_type": "measurement",
                "finding_id": hc.pk,
                "action": "accepted",
                "version": 3,
            },
            409,
            "version",
        ),
        (
            {
                "finding_type": "measurement",
                "finding_id": 10**9,
                "action": "accepted",
                "version": 0,
            },
            404,
            "finding_id",
        ),
        (
            {
                "finding_type": "measurement",
                "finding_id": hc.pk,
                "action": "edited",
                "version": 0,
                "geometry_px": {"cx": 1},
            },
            400,
            "geometry_px.cy",
        ),
    ]
    for body, status, field in cases:
        r = post_json(client, url, body)
        assert r.status_code == status, (body, r.content)
        assert r.json()["field"] == field, (body, r.json())
        assert r.json()["error"]
    r = client.get(url)
    assert r.status_code == 405 and r.json() == {
        "error": "use POST for this endpoint",
        "field": "method",
    }
    r = client.post(url, data="{not json", content_type="application/json")
    assert r.status_code == 400 and r.json()["field"] == "body"
    r = client.post(url, data="[1, 2]", content_type="application/json")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    r = post_json(client, reverse("review:sign", args=[study.pk]), {"password": "pw"})
    assert r.status_code == 400 and r.json()["field"] == "content_hash"
    r = post_json(client, reverse("review:amend", args=[study.pk]), {"reason": "because"})
    assert r.status_code == 409 and "only a signed exam" in r.json()["error"]
    r = post_json(
        client,
        reverse("review:preview", args=[study.pk]),
        {
            "finding_type": "measurement",
            "finding_id": hc.pk,
            "geometry_px": hc.geometry_px,
            "ga_weeks": "twenty",
        },
    )
    assert r.status_code == 400 and r.json()["field"] == "ga_weeks"
    assert not FindingDecision.objects.exists()


def test_stale_version_message_names_who_and_when(analysed_exam, dr, make_user, client):
    study = analysed_exam()
    hc = MeasurementFinding.objects.get(run__study=study, kind="HC")
    url = reverse("review:decide", args=[study.pk])
    body = {"finding_type": "measurement", "finding_id": hc.pk, "action": "accepted", "version": 0}
    assert post_json(client, url, body).status_code == 200
    client.force_login(make_user("obstetrician", username="dr_late"))
    r = post_json(client, url, {**body, "action": "rejected"})
    assert r.status_code == 409
    assert r.json()["error"].startswith("this finding was changed by dr_view at ")
    assert r.json()["error"].endswith("; reload")


def test_preview_recomputes_hc_and_ga_from_dragged_geometry(analysed_exam, dr, client):
    study = analysed_exam()
    hc = MeasurementFinding.objects.get(run__study=study, kind="HC")
    bigger = {**hc.geometry_px, "a": hc.geometry_px["a"] + 10}
    r = post_json(
        client,
        reverse("review:preview", args=[study.pk]),
        {"finding_type": "measurement", "finding_id": hc.pk, "geometry_px": bigger},
    )
    assert r.status_code == 200
    data = r.json()
    assert data["value_mm"] > hc.value_mm
    ga = {g["formula"]["key"]: g for g in data["biometry"]["gestational_age"]}
    assert ga["ga.hadlock1984.hc"]["inputs"]["hc_mm"] == pytest.approx(data["value_mm"], abs=0.01)


def test_full_review_over_http_then_locked(analysed_exam, dr, client):
    study = analysed_exam()
    for m in MeasurementFinding.objects.filter(run__study=study):
        r = post_json(
            client,
            reverse("review:decide", args=[study.pk]),
            {"finding_type": "measurement", "finding_id": m.pk, "action": "accepted", "version": 0},
        )
        assert r.status_code == 200
    s = client.get(reverse("review:summary", args=[study.pk])).json()
    r = post_json(
        client,
        reverse("review:sign", args=[study.pk]),
        {"password": "wrong", "content_hash": s["content_hash"]},
    )
    assert r.status_code == 400 and r.json() == {
        "error": "the password is not correct",
        "field": "password",
    }
    r = post_json(
        client,
        reverse("review:sign", args=[study.pk]),
        {"password": "pw", "content_hash": s["content_hash"]},
    )
    assert r.status_code == 200 and r.json()["exam_status"] == "signed"
    hc = MeasurementFinding.objects.get(run__study=study, kind="HC")
    r = post_json(
        client,
        reverse("review:decide", args=[study.pk]),
        {"finding_type": "measurement", "finding_id": hc.pk, "action": "rejected", "version": 1},
    )
    assert r.status_code == 409 and "signed by dr_view" in r.json()["error"]
    page = client.get(reverse("review:exam", args=[study.pk])).content.decode()
    assert "The exam is locked" in page
    assert f'data-url="/exams/{study.pk}/reports/panel/"' in page  # the reports app's panel


def test_audit_page_is_for_admins(make_user, client, analysed_exam):
    analysed_exam()
    admin = make_user("admin", username="admin_a")
    client.force_login(admin)
    r = client.get(reverse("review:audit"), {"q": "review"})
    assert r.status_code == 200
    client.force_login(make_user("obstetrician"))
    assert client.get(reverse("review:audit")).status_code == 403


def test_add_measurement_and_relabel_over_http(analysed_exam, dr, client):
    from webapp.review.models import PhysicianMeasurement, PlaneRelabel

    study = analysed_exam()
    inst = study.series.first().instances.order_by("instance_number").first()
    region = inst.us_regions.first()
    cx, cy = (region.x0 + region.x1) / 2, (region.y0 + region.y1) / 2
    url = reverse("review:measure", args=[study.pk])
    r = post_json(
        client,
        url,
        {
            "kind": "AC",
            "sop": inst.sop_instance_uid,
            "frame": 1,
            "geometry_px": {"type": "ellipse", "cx": cx, "cy": cy, "a": 50, "b": 40, "angle": 0},
        },
    )
    assert r.status_code == 201
    m = PhysicianMeasurement.objects.get(pk=r.json()["id"])
    assert (
        m.kind == "AC" and m.value_mm == pytest.approx(r.json()["value_mm"]) and m.created_by == dr
    )
    r = post_json(
        client, url, {"kind": "AC", "sop": inst.sop_instance_uid, "frame": 1, "geometry_px": None}
    )
    assert r.status_code == 400 and r.json()["field"] == "geometry_px"
    assert PhysicianMeasurement.objects.count() == 1
    state = client.get(reverse("review:state", args=[study.pk])).json()
    added = next(x for x in state["measurements"] if x["finding_type"] == "physician_measurement")
    assert added["source"] == "added by dr_view" and added["final_mm"] == pytest.approx(m.value_mm)

    url = reverse("review:relabel", args=[study.pk])
    body = {"sop": inst.sop_instance_uid, "frame": 1, "new_label": "femur_fl", "version": 0}
    assert post_json(client, url, body).status_code == 200
    r = post_json(client, url, body)  # same version again: someone (we) changed it meanwhile
    assert r.status_code == 409 and "changed by dr_view" in r.json()["error"]
    r = post_json(client, url, {**body, "version": 1, "frame": 7})
    assert r.status_code == 400 and r.json()["field"] == "frame"
    assert PlaneRelabel.objects.filter(study=study).count() == 1
