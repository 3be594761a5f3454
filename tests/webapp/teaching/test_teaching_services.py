"""Teaching services on PostgreSQL: rubric seed and versions, queue, AI pre-fill, grading and
overriding, refusals (nothing half-saved), double grading, adjudication, kappa, feedback access."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from teaching_support import answers_for, build_exam

from webapp.exams.models import AuditEvent
from webapp.teaching import services
from webapp.teaching.models import CriterionGrade, Grade, Rubric, RubricCriterion, RubricFrozen
from webapp.teaching.services import GradingRefused

pytestmark = pytest.mark.django_db


def test_rubric_v1_is_seeded_from_the_salomon_rubric_plus_completeness_items():
    from inference.quality.rubric import RUBRICS

    rubric = services.active_rubric()
    assert (rubric.name, rubric.version) == ("Salomon 2006 biometry image score", 1)
    rows = list(rubric.criteria.all())
    by_plane = {p: [c for c in rows if c.plane == p] for p in ("head", "abdomen", "femur", "exam")}
    assert [len(by_plane[p]) for p in ("head", "abdomen", "femur")] == [6, 6, 4]
    for plane, pr in RUBRICS.items():  # the frozen migration still matches inference.quality
        assert [(c.key, c.wording, c.points) for c in by_plane[plane]] == [
            (c.key, c.wording, c.points) for c in pr.criteria
        ]
    assert {c.protocol for c in by_plane["exam"]} == {"biometry", "mid_trimester"}


def test_queue_lists_trainee_exams_not_yet_graded_by_this_supervisor(
    trainee, supervisors, make_user
):
    qualified = make_user("sonographer", username="qualified")
    mine = build_exam(sonographer=trainee)
    build_exam(sonographer=qualified)
    build_exam(sonographer=None)
    s1, s2, _ = supervisors
    queue = services.grading_queue(supervisor=s1)
    assert [(i.study.pk, i.round) for i in queue["to_grade"]] == [(mine.pk, "1")]

    services.submit_grade(study=mine, supervisor=s1, answers=answers_for(mine))
    assert services.grading_queue(supervisor=s1)["to_grade"] == []
    assert [(i.study.pk, i.round) for i in services.grading_queue(supervisor=s2)["to_grade"]] == [
        (mine.pk, "2")
    ]


def test_prefill_carries_ai_verdicts_evidence_and_the_saved_image(trainee):
    study = build_exam(sonographer=trainee, verdicts={"head.symmetric": "not_met"})
    planes = services.prefill_grade(study=study, rubric=services.active_rubric())
    assert [p.plane for p in planes] == ["head", "abdomen", "femur", "exam"]
    head = {i.criterion.key: i for i in planes[0].criteria}
    assert len(head) == 6
    assert (head["head.symmetric"].ai_verdict, head["head.symmetric"].proposed) == (
        "not_met",
        "not_met",
    )
    fills = head["head.fills_30pct"]
    assert fills.evidence == {"fill_fraction": 0.41}
    assert "41%" in fills.rationale
    assert fills.instance.instance_number == 1 and fills.frame_number == 1
    # completeness of the biometry protocol: all three views found optimal
    (exam_item,) = planes[3].criteria
    assert exam_item.criterion.key == "exam.complete.biometry"
    assert (exam_item.ai_verdict, exam_item.rationale) == ("met", "3 of 3 required views found")


def test_grade_accepting_and_overriding_ai_verdicts(trainee, supervisors):
    study = build_exam(sonographer=trainee)
    answers = answers_for(study, head__symmetric="not_met", femur__angle_below_45="not_applicable")
    answers["head.cavum_septi_pellucidi_visible"] = "met"  # AI could not judge: not an override
    grade = services.submit_grade(
        study=study,
        supervisor=supervisors[0],
        answers=answers,
        comments={"head.symmetric": "midline off centre"},
        comment="Good femur, work on symmetry.",
    )
    assert (grade.round, grade.rubric.version, grade.trainee, grade.protocol) == (
        "1",
        1,
        trainee,
        "biometry",
    )
    rows = {c.criterion.key: c for c in grade.criteria.select_related("criterion")}
    assert len(rows) == 17  # 16 plane criteria + the biometry completeness item
    assert {k for k, c in rows.items() if c.overridden} == {
        "head.symmetric",
        "femur.angle_below_45",
    }
    sym = rows["head.symmetric"]
    assert (sym.verdict, sym.ai_verdict, sym.comment) == ("not_met", "met", "midline off centre")
    assert rows["head.fills_30pct"].ai_evidence == {"fill_fraction": 0.41}
    assert rows["head.cavum_septi_pellucidi_visible"].ai_verdict == "not_assessable"
    assert not rows["head.cavum_septi_pellucidi_visible"].overridden
    event = AuditEvent.objects.filter(study_instance_uid=study.study_instance_uid).latest("at")
    assert event.action == "create" and "2 AI verdicts overridden" in event.detail


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"drop": "femur.fills_30pct"}, "1 criteria not answered: femur.fills_30pct"),
        ({"set": ("head.symmetric", "maybe")}, "head.symmetric: unknown verdict 'maybe'"),
        ({"set": ("head.nonsense", "met")}, "head.nonsense: not a criterion of this grading"),
    ],
)
def test_bad_answers_are_refused_and_nothing_is_saved(trainee, supervisors, change, message):
    study = build_exam(sonographer=trainee)
    answers = answers_for(study)
    if "drop" in change:
        answers.pop(change["drop"])
    else:
        answers[change["set"][0]] = change["set"][1]
    with pytest.raises(GradingRefused, match=re.escape(message)):
        services.submit_grade(study=study, supervisor=supervisors[0], answers=answers)
    assert Grade.objects.count() == 0 and CriterionGrade.objects.count() == 0


def test_unanswered_criterion_the_ai_could_not_judge_must_be_answered(trainee, supervisors):
    study = build_exam(sonographer=trainee)
    answers = answers_for(study)
    answers["head.cavum_septi_pellucidi_visible"] = ""
    with pytest.raises(GradingRefused, match=re.escape("head.cavum_septi_pellucidi_visible")):
        services.submit_grade(study=study, supervisor=supervisors[0], answers=answers)
    assert not Grade.objects.exists()


def test_non_trainee_exam_third_grading_and_regrading_are_refused(trainee, supervisors, make_user):
    qualified = make_user("sonographer", username="qualified")
    other = build_exam(sonographer=qualified)
    with pytest.raises(GradingRefused, match="qualified, who is not a trainee"):
        services.submit_grade(study=other, supervisor=supervisors[0], answers=answers_for(other))
    study = build_exam(sonographer=trainee)
    s1, s2, s3 = supervisors
    services.submit_grade(study=study, supervisor=s1, answers=answers_for(study))
    with pytest.raises(GradingRefused, match="already graded"):
        services.submit_grade(study=study, supervisor=s1, answers=answers_for(study))
    services.submit_grade(study=study, supervisor=s2, answers=answers_for(study))
    with pytest.raises(GradingRefused, match="graded twice already"):
        services.submit_grade(study=study, supervisor=s3, answers=answers_for(study))
    with pytest.raises(GradingRefused, match="only supervisors"):
        services.submit_grade(
            study=build_exam(sonographer=trainee),
            supervisor=make_user("obstetrician"),
            answers={},
        )
    assert Grade.objects.filter(study=other).count() == 0
    assert Grade.objects.filter(study=study).count() == 2


def test_double_grading_disagreements_and_adjudication(trainee, supervisors):
    study = build_exam(sonographer=trainee)
    s1, s2, s3 = supervisors
    services.submit_grade(study=study, supervisor=s1, answers=answers_for(study))
    services.submit_grade(
        study=study,
        supervisor=s2,
        answers=answers_for(
            study, head__symmetric="not_met", abdomen__kidneys_not_visible="not_met"
        ),
        comments={"abdomen.kidneys_not_visible": "kidney visible at left"},
    )
    disputed = services.disagreements(study=study)
    assert [(d.criterion.key, d.first.verdict, d.second.verdict) for d in disputed] == [
        ("head.symmetric", "met", "not_met"),
        ("abdomen.kidneys_not_visible", "met", "not_met"),
    ]
    assert [i.study.pk for i in services.grading_queue(supervisor=s3)["to_adjudicate"]] == [
        study.pk
    ]
    with pytest.raises(GradingRefused, match="third supervisor"):
        services.adjudicate(study=study, supervisor=s1, answers={})
    with pytest.raises(
        GradingRefused, match=re.escape("1 criteria not answered: abdomen.kidneys_not_visible")
    ):
        services.adjudicate(study=study, supervisor=s3, answers={"head.symmetric": "met"})
    with pytest.raises(GradingRefused, match=re.escape("femur.fills_30pct: not a criterion")):
        services.adjudicate(
            study=study,
            supervisor=s3,
            answers={
                "head.symmetric": "met",
                "abdomen.kidneys_not_visible": "not_met",
                "femur.fills_30pct": "met",
            },
        )
    grade = services.adjudicate(
        study=study,
        supervisor=s3,
        answers={"head.symmetric": "met", "abdomen.kidneys_not_visible": "not_met"},
    )
    assert grade.round == "adjudication" and grade.criteria.count() == 2
    final = services.final_verdicts(study.grades.all())
    assert final["head.symmetric"].verdict == "met"
    assert final["abdomen.kidneys_not_visible"].verdict == "not_met"
    assert final["abdomen.kidneys_not_visible"].grade == grade
    assert services.grading_queue(supervisor=s3)["to_adjudicate"] == []


def test_kappa_per_criterion_over_double_graded_exams(trainee, supervisors):
    """Hand-computed: head.symmetric over 5 exams, pairs (met,met) x2, (met,not_met),
    (not_met,not_met), (n/a,n/a): agreement 80 %, p_e = (3*2+1*2+1*1)/25 = 0.36,
    kappa = (0.8-0.36)/0.64 = 0.6875. Every other criterion: always met by both (kappa
    undefined, 100 %)."""
    s1, s2, _ = supervisors
    pairs = [
        ("met", "met"),
        ("met", "met"),
        ("met", "not_met"),
        ("not_met", "not_met"),
        ("not_applicable", "not_applicable"),
    ]
    for first, second in pairs:
        study = build_exam(sonographer=trainee)
        services.submit_grade(
            study=study,
            supervisor=s1,
            answers=answers_for(study, verdict="met", head__symmetric=first),
        )
        services.submit_grade(
            study=study,
            supervisor=s2,
            answers=answers_for(study, verdict="met", head__symmetric=second),
        )
    rows = {r.key: r.stats for r in services.agreement_by_criterion()}
    sym = rows["head.symmetric"]
    assert (sym.pairs, sym.agreeing) == (5, 4)
    assert sym.percent == pytest.approx(80.0)
    assert sym.kappa == pytest.approx(0.6875)
    assert rows["femur.fills_30pct"].percent == 100.0 and rows["femur.fills_30pct"].kappa is None
    assert len(rows) == 17


def test_rubric_versioning_keeps_graded_history(trainee, supervisors, make_user):
    s1, s2, _ = supervisors
    v1 = services.active_rubric()
    old_exam = build_exam(sonographer=trainee)
    old = services.submit_grade(study=old_exam, supervisor=s1, answers=answers_for(old_exam))

    crit = v1.criteria.get(key="head.symmetric")
    crit.wording = "Symmetrical plane (changed)"
    with pytest.raises(RubricFrozen, match="create a new version"):
        crit.save()
    with pytest.raises(RubricFrozen):
        crit.delete()

    admin = make_user("admin")
    v2 = services.new_rubric_version(rubric=v1, created_by=admin, note="reworded symmetry")
    RubricCriterion.objects.filter(rubric=v2, key="head.symmetric").update(
        wording="Symmetrical plane: midline echo centred"
    )
    assert (v2.version, v2.active, v2.criteria.count()) == (2, True, 18)
    assert services.active_rubric() == v2
    assert not Rubric.objects.get(pk=v1.pk).active

    old.refresh_from_db()
    assert old.rubric_id == v1.pk
    assert old.criteria.get(criterion__key="head.symmetric").criterion.wording == (
        "Symmetrical plane"
    )
    # the second grade of an exam graded under v1 stays on v1 (criterion-by-criterion comparison)
    second = services.submit_grade(study=old_exam, supervisor=s2, answers=answers_for(old_exam))
    assert second.rubric_id == v1.pk
    # a new exam is graded with v2 and its wording
    new_exam = build_exam(sonographer=trainee)
    new = services.submit_grade(study=new_exam, supervisor=s1, answers=answers_for(new_exam))
    assert new.rubric_id == v2.pk
    assert new.criteria.get(criterion__key="head.symmetric").criterion.wording == (
        "Symmetrical plane: midline echo centred"
    )


def test_trainees_see_only_their_own_feedback_supervisors_all(trainee, supervisors, make_user):
    other = make_user("sonographer", username="trainee_b", is_trainee=True)
    mine = build_exam(sonographer=trainee)
    theirs = build_exam(sonographer=other)
    s1 = supervisors[0]
    services.submit_grade(
        study=mine,
        supervisor=s1,
        answers=answers_for(mine, abdomen__stomach_visible="not_met"),
        comments={"abdomen.stomach_visible": "stomach not in plane"},
        comment="Mind the stomach bubble.",
    )
    services.submit_grade(study=theirs, supervisor=s1, answers=answers_for(theirs))

    (fb,) = services.trainee_feedback(trainee=trainee, viewer=trainee)
    assert fb.study == mine
    assert [c.criterion.key for c in fb.missed] == ["abdomen.stomach_visible"]
    assert fb.missed[0].instance.instance_number == 2  # the abdomen image it was judged on
    assert ("abdomen", pytest.approx(5 / 6)) in fb.scores.items()
    assert ("Bubble visible", "") not in fb.comments
    assert any(text == "Mind the stomach bubble." for _, text in fb.comments)
    assert ("Stomach bubble visible", "stomach not in plane") in fb.comments

    with pytest.raises(PermissionError):
        services.trainee_feedback(trainee=other, viewer=trainee)
    assert [f.study for f in services.trainee_feedback(trainee=other, viewer=s1)] == [theirs]


def test_dashboard_numbers_over_time_and_csv(trainee, supervisors):
    s1 = supervisors[0]
    jan = build_exam(sonographer=trainee, date=dt.date(2026, 1, 10))
    feb = build_exam(
        sonographer=trainee,
        date=dt.date(2026, 2, 3),
        verdicts={"femur.both_ends_visible": "not_met"},
    )
    services.submit_grade(
        study=jan, supervisor=s1, answers=answers_for(jan, exam__complete__biometry="not_met")
    )
    services.submit_grade(study=feb, supervisor=s1, answers=answers_for(feb))
    board = services.dashboard(trainee=trainee)
    assert board.exams == 2
    assert [(p.period, p.exams, p.completeness_rate) for p in board.periods] == [
        ("2026-01", 1, 0.0),
        ("2026-02", 1, 1.0),
    ]
    # head: cavum septi n/a (AI could not judge) -> 5/5; femur in Feb: 3 of 4 met
    assert board.periods[0].mean_scores == {"head": 1.0, "abdomen": 1.0, "femur": 1.0}
    assert board.periods[1].mean_scores["femur"] == pytest.approx(0.75)
    assert [(k, m, n) for k, _, m, n in board.most_missed] == [
        ("exam.complete.biometry", 1, 2),
        ("femur.both_ends_visible", 1, 2),
    ]
    assert board.measurement_agreement == []
    text = services.dashboard_csv(board=board)
    lines = text.splitlines()
    assert lines[0].startswith("section,who,period,exams,completeness_rate,mean_score_head")
    assert lines[1] == "period,trainee_a,2026-01,1,0.0000,1.0000,1.0000,1.0000"
    assert lines[2] == "period,trainee_a,2026-02,1,1.0000,1.0000,1.0000,0.7500"
    assert "most_missed,trainee_a,femur.both_ends_visible,1,2," in text
    png = services.dashboard_png(board=board)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    cohort = services.dashboard(trainee=None)
    assert cohort.label == "All trainees" and cohort.exams == 2


def test_an_emptied_database_gets_rubric_v1_back_on_first_use():
    Rubric.objects.all().delete()  # what a flush between transactional tests leaves
    rubric = services.active_rubric()
    assert (rubric.version, rubric.criteria.count()) == (1, 18)
    Rubric.objects.filter(pk=rubric.pk).update(active=False)
    with pytest.raises(GradingRefused, match="no active version"):
        services.active_rubric()
