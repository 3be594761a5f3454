"""Teaching pages over HTTP: roles, the grading form (accept, override, refusals with a clear
message and nothing saved), feedback access (trainees only their own), dashboards and CSV."""

from __future__ import annotations

import pytest
from teaching_support import answers_for, build_exam

from webapp.teaching import services
from webapp.teaching.models import Grade

pytestmark = pytest.mark.django_db


def form(answers: dict[str, str], **extra: str) -> dict[str, str]:
    data = {f"verdict__{k}": v for k, v in answers.items()}
    data.update(extra)
    return data


def test_queue_and_grading_page_for_supervisors_only(client, trainee, supervisors):
    study = build_exam(sonographer=trainee)
    client.force_login(trainee)
    assert client.get("/teaching/").status_code == 403
    assert client.get(f"/teaching/exams/{study.pk}/grade/").status_code == 403

    client.force_login(supervisors[0])
    page = client.get("/teaching/").content.decode()
    assert f'data-exam="{study.pk}"' in page and f"/teaching/exams/{study.pk}/grade/" in page
    assert "First grading" in page and "<td>ready</td>" in page
    page = client.get(f"/teaching/exams/{study.pk}/grade/").content.decode()
    assert "Head occupying more than 30 % of the image" in page
    assert "occupies 41% of the field of view (&gt; 30%)" in page  # the AI's evidence
    assert "fill fraction 0.41" in page
    assert f"/exams/instances/{study.series.get().instances.get(instance_number=1).sop_instance_uid}/frames/1/rendered" in page  # fmt: skip
    assert 'value="met" checked' in page  # pre-filled from the AI
    assert "<kbd>j</kbd>" in page and "<kbd>Enter</kbd>" in page  # keys documented


def test_post_grade_overrides_and_redirects(client, trainee, supervisors):
    study = build_exam(sonographer=trainee)
    client.force_login(supervisors[0])
    answers = answers_for(study, head__thalami_visible="not_met")
    response = client.post(
        f"/teaching/exams/{study.pk}/grade/",
        form(
            answers,
            **{"comment__head.thalami_visible": "thalami cut off", "comment": "Nice work."},
        ),
    )
    assert response.status_code == 302 and response["Location"].endswith(f"?graded={study.pk}")
    page = client.get(f"/teaching/exams/{study.pk}/grade/").content.decode()
    assert f"you have already graded exam {study.pk}" in page and 'id="submit-grade"' not in page
    grade = Grade.objects.get(study=study)
    row = grade.criteria.get(criterion__key="head.thalami_visible")
    assert (row.verdict, row.overridden, row.comment) == ("not_met", True, "thalami cut off")
    assert grade.comment == "Nice work."


def test_post_with_missing_or_unknown_verdict_says_why_and_saves_nothing(
    client, trainee, supervisors
):
    study = build_exam(sonographer=trainee)
    client.force_login(supervisors[0])
    answers = answers_for(study)
    del answers["abdomen.symmetric"]
    response = client.post(f"/teaching/exams/{study.pk}/grade/", form(answers))
    assert response.status_code == 400
    text = response.content.decode()
    assert "1 criteria not answered: abdomen.symmetric (Symmetrical plane)" in text
    answers = answers_for(study, femur__angle_below_45="perhaps")
    response = client.post(f"/teaching/exams/{study.pk}/grade/", form(answers))
    assert response.status_code == 400
    assert "femur.angle_below_45: unknown verdict &#x27;perhaps&#x27;" in response.content.decode()
    # what was posted is kept in the form
    assert 'name="verdict__femur.angle_below_45" value="met"' in response.content.decode()
    assert not Grade.objects.exists()


def test_non_trainee_exam_cannot_be_graded(client, supervisors, make_user):
    study = build_exam(sonographer=make_user("sonographer", username="qualified"))
    client.force_login(supervisors[0])
    page = client.get(f"/teaching/exams/{study.pk}/grade/").content.decode()
    assert "qualified, who is not a trainee" in page and 'id="submit-grade"' not in page
    response = client.post(f"/teaching/exams/{study.pk}/grade/", form(answers_for(study)))
    assert response.status_code == 400
    assert "only trainees&#x27; exams are graded" in response.content.decode()
    assert not Grade.objects.exists()
    assert client.get("/teaching/exams/999999/grade/").status_code == 404


def test_adjudication_page_and_agreement_page(client, trainee, supervisors):
    study = build_exam(sonographer=trainee)
    s1, s2, s3 = supervisors
    services.submit_grade(study=study, supervisor=s1, answers=answers_for(study))
    services.submit_grade(
        study=study, supervisor=s2, answers=answers_for(study, femur__fills_30pct="not_met")
    )
    client.force_login(s3)
    page = client.get("/teaching/agreement/").content.decode()
    assert 'data-key="femur.fills_30pct"' in page
    assert "0.0 %" in page  # one exam, disagreeing
    assert f"/teaching/exams/{study.pk}/adjudicate/" in page
    page = client.get(f"/teaching/exams/{study.pk}/adjudicate/").content.decode()
    assert page.count('class="criterion"') == 1 and "sup1" in page and "sup2" in page
    response = client.post(
        f"/teaching/exams/{study.pk}/adjudicate/", {"verdict__femur.fills_30pct": "met"}
    )
    assert response.status_code == 302
    assert study.grades.get(round="adjudication").supervisor == s3


def test_trainee_sees_only_own_feedback_supervisor_sees_all(
    client, trainee, supervisors, make_user
):
    other = make_user("sonographer", username="trainee_b", is_trainee=True)
    mine, theirs = build_exam(sonographer=trainee), build_exam(sonographer=other)
    for study in (mine, theirs):
        services.submit_grade(
            study=study,
            supervisor=supervisors[0],
            answers=answers_for(study, femur__both_ends_visible="not_met"),
            comments={"femur.both_ends_visible": f"distal end cut ({study.pk})"},
        )
    client.force_login(trainee)
    page = client.get("/teaching/feedback/").content.decode()
    assert f'data-exam="{mine.pk}"' in page and f'data-exam="{theirs.pk}"' not in page
    assert f"distal end cut ({mine.pk})" in page
    assert "Both ends of the bone clearly visible" in page
    assert client.get(f"/teaching/trainees/{other.pk}/feedback/").status_code == 404
    assert client.get(f"/teaching/trainees/{trainee.pk}/feedback/").status_code == 200
    assert client.get(f"/teaching/dashboard/{other.pk}/").status_code == 404
    assert client.get(f"/teaching/dashboard/{other.pk}/data.csv").status_code == 404
    assert client.get(f"/teaching/dashboard/{other.pk}/plot.png").status_code == 404
    assert client.get("/teaching/dashboard/cohort/").status_code == 404
    assert client.get(f"/teaching/dashboard/{trainee.pk}/").status_code == 200

    client.force_login(supervisors[1])
    page = client.get(f"/teaching/trainees/{other.pk}/feedback/").content.decode()
    assert f"distal end cut ({theirs.pk})" in page
    assert client.get("/teaching/trainees/").status_code == 200


def test_dashboard_plot_and_csv(client, trainee, supervisors):
    study = build_exam(sonographer=trainee)
    services.submit_grade(study=study, supervisor=supervisors[0], answers=answers_for(study))
    client.force_login(supervisors[0])
    page = client.get(f"/teaching/dashboard/{trainee.pk}/").content.decode()
    assert f"/teaching/dashboard/{trainee.pk}/plot.png" in page
    png = client.get(f"/teaching/dashboard/{trainee.pk}/plot.png")
    assert png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    csv = client.get("/teaching/dashboard/cohort/data.csv")
    assert csv["Content-Type"] == "text/csv"
    assert 'filename="teaching-cohort.csv"' in csv["Content-Disposition"]
    assert csv.content.decode().splitlines()[1].startswith("period,All trainees,")
    assert client.get("/teaching/dashboard/nobody/").status_code == 404
