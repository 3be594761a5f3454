"""Supervisor grading in real headless Chromium against Django's live server.

Two phantom biometry exams by a trainee are ingested through the exams ingest service (so the
saved images render through the exams rendered-frame endpoint); their analysis findings (best
frames, Salomon criteria with evidence) are written as rows the way the analysis app stores them
— no model inference. A supervisor grades one exam with the keyboard only (accepts the AI,
answers the criterion the AI could not judge, overrides one, comments, Enter submits), then opens
the trainee's dashboard whose matplotlib plot is checked on its pixels; the trainee then sees the
missed criterion on their feedback page. Screenshots go to artifacts/screenshots/teaching-*.png.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from review_e2e_support import PLANES, SCREENSHOTS, login, screenshot

pytestmark = pytest.mark.browser

VIEWS = (("head", "head_trans_thalamic"), ("abdomen", "abdomen_ac"), ("femur", "femur_fl"))


def ingest_exam(tmp_path: Path, number: int, sonographer: Any) -> Any:
    """A phantom exam (head, abdomen, femur) ingested and given AI quality findings: every
    criterion met, except the cavum septi pellucidi (not assessable)."""
    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image
    from inference.phantom.generator import make_frame
    from inference.quality.rubric import RUBRICS
    from webapp.analysis.models import AnalysisRun, BestFrameFinding, QualityFinding
    from webapp.exams import services as exams
    from webapp.exams.models import Instance, Study

    ids = ExamIds.for_exam(8383, number, "teaching e2e")
    series_uid = phantom_uid(8383, number, "series", 1)
    study_id, frames = None, []
    for i, (plane, sub) in enumerate(PLANES, start=1):
        f = make_frame(plane, brain_plane=sub, seed=8383 + i, shape=(360, 480))
        frames.append(f)
        path = write_us_image(
            tmp_path / f"E{number}IMG{i:03d}.dcm", f.image, fov=f.fov, pixel_mm=f.pixel_mm,
            ids=ids, series_uid=series_uid, sop_uid=phantom_uid(8383, number, "sop", i),
            instance_number=i,
        )  # fmt: skip
        result = exams.ingest_file(source=path, file_name=path.name, route="upload", queue=False)
        assert result.ok, result.reason
        study_id = result.study_id
    study = Study.objects.get(pk=study_id)
    study.sonographer = sonographer
    study.save(update_fields=["sonographer"])
    instances = list(Instance.objects.filter(series__study=study).order_by("instance_number"))
    run = AnalysisRun.objects.create(study=study, status="done", stage="done", protocol="biometry")
    head = frames[0].landmarks["head"]
    head_box = [head.cx - head.a, head.cy - head.a, head.cx + head.a, head.cy + head.a]
    for (plane, view), inst in zip(VIEWS, instances, strict=True):
        BestFrameFinding.objects.create(
            run=run, view_key=view, instance=inst, frame_number=1, score=0.9, flag="optimal"
        )
        for c in RUBRICS[plane].criteria:
            evidence, rationale, verdict = {}, "", "met"
            if c.key == "head.cavum_septi_pellucidi_visible":
                verdict, rationale = "not_assessable", "cavum_septi_pellucidi detection uncertain (p = 0.48)"  # fmt: skip
            elif c.kind == "fills_image":
                evidence = {"fill_fraction": 0.41, "region_bbox_xyxy": head_box}
                rationale = "occupies 41% of the field of view (> 30%)"
            QualityFinding.objects.create(
                run=run, view_key=view, rubric_plane=plane, criterion_key=c.key, verdict=verdict,
                evidence=evidence, rationale=rationale, instance=inst, frame_number=1,
            )  # fmt: skip
    return study


@pytest.fixture
def people(transactional_db: None) -> dict[str, Any]:
    from webapp.accounts.models import User

    out = {}
    for name, role, trainee in (("sup_e2e", "supervisor", False), ("trainee_e2e", "sonographer", True)):  # fmt: skip
        user = User(
            username=name, role=role, is_trainee=trainee, first_name=name.split("_")[0].title()
        )
        user.set_password("e2e-pass")
        user.save()
        out[name] = user
    return out


def png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_supervisor_grades_with_the_keyboard_and_the_dashboard_plot_renders(
    page, live_server, people, tmp_path
):
    from webapp.teaching import services
    from webapp.teaching.models import Grade

    trainee, sup = people["trainee_e2e"], people["sup_e2e"]
    earlier = ingest_exam(tmp_path, 1, trainee)  # January
    later = ingest_exam(tmp_path, 40, trainee)  # February
    answers = {
        i.criterion.key: i.proposed or "not_met"
        for p in services.prefill_grade(study=earlier, rubric=services.exam_rubric(earlier))
        for i in p.criteria
    }
    services.submit_grade(study=earlier, supervisor=sup, answers=answers)

    base = live_server.url
    login(page, base, "sup_e2e", "e2e-pass")
    assert page.url.endswith("/teaching/")  # the supervisor lands on the grading queue
    row = page.locator(f"#to-grade tr[data-exam='{later.pk}']")
    row.get_by_role("link", name="Grade").click()
    page.wait_for_url(f"**/teaching/exams/{later.pk}/grade/")
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.frame-img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("img.frame-img").count() == 3
    # starts on the criterion the AI could not judge; its evidence is shown on the image
    current = page.locator("li.criterion.current")
    assert current.get_attribute("data-key") == "head.cavum_septi_pellucidi_visible"
    assert "0.48" in page.locator("section[data-plane=head] [data-caption]").inner_text()
    assert "occupies 41% of the field of view" in page.inner_text("section[data-plane=head]")

    page.keyboard.press("m")  # met; moves on to the next criterion
    page.keyboard.press("j")  # head.fills_30pct: its box is drawn on the image
    assert page.locator("rect[data-box='head.fills_30pct']").is_visible()
    for _ in range(4):
        page.keyboard.press("k")  # back to head.symmetric
    assert page.locator("li.criterion.current").get_attribute("data-key") == "head.symmetric"
    page.keyboard.press("2")  # not met: overrides the AI's "met"
    assert page.locator("li[data-key='head.symmetric'] .overridden-flag").is_visible()
    page.keyboard.press("c")  # comment on head.thalami_visible (now current)
    page.keyboard.type("thalami clear")
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("c")
    page.keyboard.type("midline tilted")
    page.keyboard.press("Escape")
    assert page.inner_text("[data-progress]") == "17 of 17 criteria answered"
    for _ in range(4):
        page.keyboard.press("ArrowDown")  # to head.fills_30pct: its evidence box on the image
    assert page.locator("rect[data-box='head.fills_30pct']").is_visible()
    screenshot(page, "teaching-grading")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/teaching/?graded={later.pk}")
    assert f"Grade of exam {later.pk} saved" in page.inner_text("main")

    grade = Grade.objects.get(study=later)
    rows = {c.criterion.key: c for c in grade.criteria.select_related("criterion")}
    assert (grade.supervisor, grade.round) == (sup, "1")
    assert (rows["head.symmetric"].verdict, rows["head.symmetric"].overridden) == ("not_met", True)
    assert rows["head.symmetric"].comment == "midline tilted"
    assert rows["head.thalami_visible"].comment == "thalami clear"
    assert rows["head.cavum_septi_pellucidi_visible"].verdict == "met"
    assert sum(c.overridden for c in rows.values()) == 1

    # the trainee's dashboard: the plot is a real PNG with drawn content
    page.goto(f"{base}/teaching/dashboard/{trainee.pk}/")
    page.wait_for_function(
        "() => { const i = document.getElementById('dashboard-plot'); return i.complete && i.naturalWidth > 0; }"
    )
    assert page.evaluate("document.getElementById('dashboard-plot').naturalWidth") == 900
    img = png_pixels(page.locator("#dashboard-plot").screenshot())
    assert img.shape[0] > 200 and img.shape[1] > 600
    not_white = (img.sum(axis=-1) < 600).sum()
    assert not_white > 5000, f"plot looks blank ({not_white} non-white pixels)"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # lines, bars, text in colour
    assert page.locator("#periods tbody tr").count() == 2
    screenshot(page, "teaching-dashboard")

    # the trainee sees the missed criterion with its image and the comment
    page.context.clear_cookies()
    login(page, base, "trainee_e2e", "e2e-pass")
    page.goto(f"{base}/teaching/feedback/")
    missed = page.locator(f"section[data-exam='{later.pk}'] li[data-key='head.symmetric']")
    assert "midline tilted" in missed.inner_text()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.missed img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    screenshot(page, "teaching-feedback")
    assert page.errors == []
    copy_for_docs(["teaching-grading", "teaching-dashboard", "teaching-feedback"])


def copy_for_docs(names: list[str]) -> None:
    """Copy the screenshots to docs/screenshots/ when SONOREVIEW_UPDATE_DOCS_SCREENSHOTS=1 (the
    review tests' convention, so ordinary runs leave the checkout clean)."""
    if os.environ.get("SONOREVIEW_UPDATE_DOCS_SCREENSHOTS") != "1":
        return
    docs = SCREENSHOTS.parents[1] / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(SCREENSHOTS / f"{name}.png", docs / f"{name}.png")
