"""The review workflow in real headless Chromium against Django's live server.

An obstetrician signs in, opens the worklist, opens the next exam (a phantom biometry exam
analysed by the real pipeline), sees the plane gallery and the image and overlays drawn (checked
on the screenshot's pixels, not only in the DOM), drags the head ellipse's handle and sees HC and
the GA recomputed by the server, accepts and rejects findings, signs off with the password, and
then fails to change the signed exam. Screenshots of each screen go to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from review_e2e_support import SCREENSHOTS, copy_for_docs, login, screenshot

pytestmark = pytest.mark.browser

HC_RGB = (0, 229, 255)  # the viewer bundle's overlay colours (frontend/src/overlayTools.js)
CONTOUR_RGB = (255, 64, 129)


def assert_no_page_errors(page) -> None:
    """No uncaught error from the review page's own scripts. Errors thrown inside the viewer
    bundle (static/viewer, another team's) are reported as warnings, not hidden: a known one is
    its throttle() running a stale timer with no arguments ("s is not iterable")."""
    import warnings

    errors = page.errors  # type: ignore[attr-defined]
    ours = [e for e in errors if "/static/viewer/" not in e]
    for e in errors:
        if e not in ours:
            warnings.warn(f"viewer bundle error: {e[:300]}", stacklevel=2)
    assert ours == []


def pixels(locator) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"))


def colour_count(img: np.ndarray, rgb, xy=None, radius: int = 4, tol: int = 60) -> int:
    if xy is not None:
        x, y = round(xy[0]), round(xy[1])
        img = img[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
    return int((np.abs(img.astype(int) - np.array(rgb)).sum(axis=-1) <= tol).sum())


def ellipse_point(e: dict, t: float) -> tuple[float, float]:
    c, s = math.cos(e["angle"]), math.sin(e["angle"])
    x, y = e["a"] * math.cos(t), e["b"] * math.sin(t)
    return e["cx"] + x * c - y * s, e["cy"] + x * s + y * c


def to_canvas(page, p) -> tuple[float, float]:
    return tuple(page.evaluate("p => window.examViewer.imageToCanvas(p)", list(p)))


def drag(page, start, end, steps: int = 8) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(
            start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps
        )
        page.wait_for_timeout(25)
    page.mouse.up()


def test_obstetrician_reviews_and_signs_an_exam_analysed_by_the_pipeline(
    page, live_server, pipeline_exam, doctor
):
    from webapp.exams.models import ExamStatus
    from webapp.review.models import FindingDecision, SignOff

    base = live_server.url
    study = pipeline_exam
    login(page, base, "dr_e2e", "e2e-pass")

    # worklist
    page.goto(f"{base}/review/")
    row = page.locator(f"tr[data-exam='{study.pk}']")
    row.wait_for()
    assert study.patient.name in row.inner_text()
    assert "Ready for review" in row.inner_text()
    screenshot(page, "worklist")

    # one key opens the exam waiting longest
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/exams/{study.pk}/")
    page.wait_for_function(
        "() => ['ready', 'error', 'fallback'].includes(document.body.dataset.viewer)", timeout=30000
    )
    assert page.evaluate("document.body.dataset.viewer") == "ready", page.locator(
        "#notice"
    ).inner_text()
    first_render_ms = page.evaluate("window.examViewerReady.firstRenderMs")
    assert first_render_ms < 5000

    # planes: one card per protocol view of the real run
    state = page.evaluate("window.reviewState()")
    cards = page.locator(".plane-card")
    assert cards.count() == len(state["planes"]) == 3
    assert [c["view_key"] for c in state["planes"]] == [
        "head_trans_thalamic",
        "abdomen_ac",
        "femur_fl",
    ]
    for card, plane in zip(cards.all(), state["planes"], strict=True):
        assert plane["flag"].replace("_", "-") in card.inner_text()

    # the image is drawn: the viewport screenshot is not blank
    viewport = page.locator(".srv-viewport")
    shot = pixels(viewport)
    assert (shot.max(axis=-1) > 30).mean() > 0.05, "the frame was not drawn"

    # the head ellipse: the AI's HC when the models found the head, else one the physician places
    ai_hc = next((m for m in state["measurements"] if m["kind"] == "HC"), None)
    if ai_hc is not None:
        overlay_id = ai_hc["overlay"]["id"]
        page.locator(f"tr[data-item='{overlay_id}']").click()
    else:
        # the shipped models found no head on this phantom: measure it by hand on the head frame
        page.locator(".thumbs button").first.click()
        page.wait_for_timeout(500)
        page.select_option("#add-kind", "HC")
        page.click("#add-start")
        overlay_id = "new:1"
    page.wait_for_function(
        "id => window.examViewer.getState().overlays.some(o => o.id === id)", arg=overlay_id
    )
    overlay = next(
        o for o in page.evaluate("window.examViewer.getState().overlays") if o["id"] == overlay_id
    )
    # the viewer shows the overlay's own image and frame before the pixels are checked
    page.wait_for_function(
        "([sop, f]) => { const s = window.examViewer.getState(); return s.state === 'ready' && s.sopInstanceUID === sop && s.frameIndex === f; }",
        arg=[
            next(
                m
                for m in page.evaluate("window.reviewState().measurements")
                if m["overlay"] and m["overlay"]["id"] == overlay_id
            )["overlay"]["sopInstanceUID"]
            if ai_hc is not None
            else page.evaluate("window.examViewer.getState().sopInstanceUID"),
            overlay["frameIndex"],
        ],
        timeout=15000,
    )
    page.wait_for_timeout(300)
    e = overlay["geometry"]
    screenshot(page, "exam")
    segmentations = page.evaluate("window.reviewState().segmentations")
    if segmentations:
        # the skull contour (segmentation, display only) is drawn where the mask's edge is
        seg = segmentations[0]["overlay"]
        shot = pixels(viewport)
        drawn = sum(
            colour_count(shot, CONTOUR_RGB, to_canvas(page, p), radius=3) > 0
            for p in seg["points"][:: max(1, len(seg["points"]) // 12)]
        )
        assert drawn >= 6, "segmentation contour not drawn"
    # the calipers and the contour run along the ellipse: hide them to see the HC outline alone
    page.evaluate(
        "() => { window.examViewer.setOverlayVisible('contour', false); window.examViewer.setOverlayVisible('length', false); }"
    )
    page.wait_for_timeout(150)
    shot = pixels(viewport)
    for t in (0, math.pi / 2, math.pi, 3 * math.pi / 2):
        assert colour_count(shot, HC_RGB, to_canvas(page, ellipse_point(e, t))) > 0, (
            f"HC outline missing at t={t}"
        )

    def hc_text() -> str:
        return (
            page.locator("#biometry dd[data-final='HC']").inner_text()
            if page.locator("#biometry dd[data-final='HC']").count()
            else ""
        )

    before_ga = page.locator("#biometry dd[data-ga='ga.hadlock1984.hc']")
    before_ga_text = before_ga.inner_text() if before_ga.count() else ""
    before_hc = hc_text()

    # drag the a-axis end inwards by 30 canvas px (staying inside the calibrated region): HC and
    # the Hadlock GA recompute at once
    box = page.locator(".srv-viewport canvas").bounding_box()
    a_end = to_canvas(page, ellipse_point(e, 0))
    centre = to_canvas(page, (e["cx"], e["cy"]))
    ux, uy = a_end[0] - centre[0], a_end[1] - centre[1]
    norm = math.hypot(ux, uy)
    start = (box["x"] + a_end[0], box["y"] + a_end[1])
    drag(page, start, (start[0] - 30 * ux / norm, start[1] - 30 * uy / norm))
    page.wait_for_function(
        "([before]) => { const n = document.querySelector(\"#biometry dd[data-ga='ga.hadlock1984.hc']\"); return n && n.textContent !== before; }",
        arg=[before_ga_text],
        timeout=10000,
    )
    after = next(
        o for o in page.evaluate("window.examViewer.getState().overlays") if o["id"] == overlay_id
    )
    assert after["geometry"]["a"] < e["a"] - 5
    page.wait_for_timeout(600)  # the last (final) geometry's recomputation has landed
    after_hc = hc_text()
    preview_mm = float(after_hc.split()[0]) if after_hc else None
    assert preview_mm is not None and (not before_hc or preview_mm < float(before_hc.split()[0]))

    if ai_hc is not None:
        page.keyboard.press("e")  # save the correction beside the AI's value
        page.wait_for_function(
            "id => { const r = document.querySelector(`tr[data-item='${id}'] .dec-edited`); return !!r; }",
            arg=overlay_id,
        )
        d = FindingDecision.objects.get(
            study=study, finding_type="measurement", finding_id=ai_hc["finding_id"]
        )
        assert d.action == "edited" and d.edited_value_mm == pytest.approx(preview_mm, abs=0.1)
        assert d.ai_snapshot["value_mm"] == pytest.approx(ai_hc["ai_value_mm"], abs=1e-6)
        # every other AI measurement: accept the first, reject the rest (keys a / r)
        others = [m for m in state["measurements"] if m["kind"] != "HC"]
        for i, m in enumerate(others):
            page.locator(
                f"tr[data-item='{m['overlay']['id'] if m['overlay'] else 'measurement:' + str(m['finding_id'])}']"
            ).click()
            page.keyboard.press("a" if i == 0 else "r")
            page.wait_for_selector(
                f"tr[data-item='measurement:{m['finding_id']}'] .dec-{'accepted' if i == 0 else 'rejected'}"
            )
    else:
        page.click("#add-save")
        page.wait_for_function(
            "() => window.reviewState().measurements.some(m => m.kind === 'HC' && m.source.startsWith('added by'))"
        )
        added = next(
            m for m in page.evaluate("window.reviewState().measurements") if m["kind"] == "HC"
        )
        assert added["final_mm"] == pytest.approx(preview_mm, abs=0.1)

    # plane and quality findings: accept one (button), reject one (key r)
    qrows = page.locator("#qualities tbody tr[data-item]")
    assert qrows.count() >= 2
    first_id = qrows.nth(0).get_attribute("data-item")
    second_id = qrows.nth(1).get_attribute("data-item")
    qrows.nth(0).locator("button[data-action=accept]").click()
    page.wait_for_selector(f"tr[data-item='{first_id}'] .dec-accepted")
    page.locator(f"tr[data-item='{second_id}']").click()
    page.keyboard.press("r")
    page.wait_for_selector(f"tr[data-item='{second_id}'] .dec-rejected")
    types = {d.split(":")[0] for d in (first_id, second_id)}
    assert FindingDecision.objects.filter(study=study, finding_type__in=types).count() == 2
    screenshot(page, "exam-decided")

    # sign off: summary + password
    page.click("#sign-open")
    page.wait_for_selector("#sign-dialog[open]")
    summary_text = page.locator("#sign-summary").inner_text()
    assert "Final measurements:" in summary_text and f"HC {preview_mm:.1f} mm" in summary_text
    assert "null" not in summary_text  # an absent line is absent, not the text "null"
    screenshot(page, "sign-off")
    page.fill("#sign-password", "wrong")
    page.click("#sign-submit")
    page.wait_for_function(
        "() => document.querySelector('#sign-error').textContent.includes('not correct')"
    )
    page.fill("#sign-password", "e2e-pass")
    page.click("#sign-submit")
    page.wait_for_selector("#locked-banner")
    study.refresh_from_db()
    assert study.status == ExamStatus.SIGNED
    assert SignOff.objects.get(study=study).signed_by == doctor

    # after signing: buttons disabled, and a forced change is refused with a clear message
    page.wait_for_function(
        "() => ['ready', 'error', 'fallback'].includes(document.body.dataset.viewer)", timeout=30000
    )
    assert page.locator("#measurements button[data-action=accept]").first.is_disabled()
    decisions = FindingDecision.objects.filter(study=study).count()
    page.locator("#qualities tbody tr[data-item]").nth(2).click()
    page.keyboard.press("a")
    page.wait_for_function("() => document.querySelector('#notice').textContent.includes('signed')")
    assert "open an amendment" in page.locator("#notice").inner_text()
    assert FindingDecision.objects.filter(study=study).count() == decisions
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "signed")
    assert_no_page_errors(page)
    copy_for_docs(["worklist", "exam", "signed"])
    print(f"first frame on the exam page: {first_render_ms:.0f} ms")


BPD_RGB = (118, 255, 3)


def test_ai_measurements_are_corrected_decided_signed_and_amended(
    page, live_server, truth_exam, doctor
):
    from webapp.analysis.models import MeasurementFinding
    from webapp.exams.models import ExamStatus
    from webapp.review.models import (
        Amendment,
        FindingDecision,
        PhysicianMeasurement,
        PlaneRelabel,
        SignOff,
    )

    base = live_server.url
    study = truth_exam
    ai = {m.kind: m for m in MeasurementFinding.objects.filter(run__study=study)}
    login(page, base, "dr_e2e", "e2e-pass")
    page.goto(f"{base}/review/exams/{study.pk}/")
    page.wait_for_function("() => document.body.dataset.viewer === 'ready'", timeout=30000)
    hc_id = f"measurement:{ai['HC'].pk}"
    page.locator(f"tr[data-item='{hc_id}']").click()
    page.wait_for_function(
        "id => window.examViewer.getState().overlays.some(o => o.id === id)", arg=hc_id
    )
    page.wait_for_timeout(300)
    viewport = page.locator(".srv-viewport")
    shot = pixels(viewport)
    e = dict(ai["HC"].geometry_px)
    for t in (0, math.pi / 2, math.pi, 3 * math.pi / 2):
        assert colour_count(shot, HC_RGB, to_canvas(page, ellipse_point(e, t))) > 0
    p1, p2 = ai["BPD"].geometry_px["points"]
    assert (
        colour_count(shot, BPD_RGB, to_canvas(page, ((p1[0] + p2[0]) / 2, (p1[1] + p2[1]) / 2))) > 0
    )

    # overlay toggle: the viewer's "ellipses" box hides the HC outline
    page.locator(".srv-toggles input[data-kind=ellipse]").uncheck()
    page.wait_for_timeout(100)
    assert colour_count(pixels(viewport), HC_RGB) < 20
    page.locator(".srv-toggles input[data-kind=ellipse]").check()
    page.wait_for_timeout(100)

    # drag the HC a-axis end outwards: the physician column and the GA update, then e saves
    box = page.locator(".srv-viewport canvas").bounding_box()
    a_end = to_canvas(page, ellipse_point(e, 0))
    centre = to_canvas(page, (e["cx"], e["cy"]))
    ux, uy = a_end[0] - centre[0], a_end[1] - centre[1]
    norm = math.hypot(ux, uy)
    start = (box["x"] + a_end[0], box["y"] + a_end[1])
    drag(page, start, (start[0] + 25 * ux / norm, start[1] + 25 * uy / norm))
    page.wait_for_selector(f"tr[data-item='{hc_id}'] .dec-unsaved")
    page.wait_for_timeout(600)
    shown = page.locator(f"tr[data-item='{hc_id}'] td[data-cell=physician]").inner_text()
    shown_mm = float(shown.split()[0])
    assert shown_mm > ai["HC"].value_mm + 5
    page.keyboard.press("e")
    page.wait_for_selector(f"tr[data-item='{hc_id}'] .dec-edited")
    d = FindingDecision.objects.get(measurement=ai["HC"])
    assert d.action == "edited" and d.edited_value_mm == pytest.approx(shown_mm, abs=0.1)
    ai["HC"].refresh_from_db()
    assert d.edited_value_mm > ai["HC"].value_mm  # the AI's row is unchanged beside the edit
    ga = page.locator("#biometry dd[data-ga='ga.hadlock1984.hc']").inner_text()
    assert ga  # GA from the edited HC is shown

    # keys on the measurement table: a accepts BPD, r rejects OFD; FL by its button
    for kind, key, cls in (("BPD", "a", "accepted"), ("OFD", "r", "rejected")):
        page.locator(f"tr[data-item='measurement:{ai[kind].pk}']").click()
        page.keyboard.press(key)
        page.wait_for_selector(f"tr[data-item='measurement:{ai[kind].pk}'] .dec-{cls}")
    page.locator(f"tr[data-item='measurement:{ai['FL'].pk}'] button[data-action=accept]").click()
    page.wait_for_selector(f"tr[data-item='measurement:{ai['FL'].pk}'] .dec-accepted")
    assert {x.measurement.kind: x.action for x in FindingDecision.objects.filter(study=study)} == {
        "HC": "edited",
        "BPD": "accepted",
        "OFD": "rejected",
        "FL": "accepted",
    }

    # the AI measured no AC: place one on the abdomen image and save it
    abdomen_sop = page.evaluate("window.reviewState().instances[1].sopInstanceUID")
    page.locator(f"#thumbs button[data-sop='{abdomen_sop}']").click()
    page.wait_for_function(
        "sop => window.examViewer.getState().sopInstanceUID === sop", arg=abdomen_sop
    )
    page.select_option("#add-kind", "AC")
    page.click("#add-start")
    page.wait_for_function("() => !document.querySelector('#add-save').disabled")
    page.click("#add-save")
    page.wait_for_function(
        "() => window.reviewState().measurements.some(m => m.kind === 'AC' && m.source.startsWith('added by'))"
    )
    ac = PhysicianMeasurement.objects.get(study=study, kind="AC")
    assert ac.instance.sop_instance_uid == abdomen_sop and ac.value_mm is not None
    assert ac.calibration["source"] == "us_regions"
    assert page.locator("#biometry dd[data-final='AC']").inner_text() == f"{ac.value_mm:.1f} mm"

    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "exam-ai-measurements")

    # relabel the frame on screen
    page.select_option("#relabel-view", "abdomen_ac")
    page.click("#relabel-form button[type=submit]")
    page.wait_for_function("() => window.reviewState().relabels.length === 1")
    assert PlaneRelabel.objects.get(study=study).new_label == "abdomen_ac"

    # GA from dates in the biometry panel's form (keyboard: Enter saves): an absurd GA is
    # refused in the form, a plausible one is stored and the centiles are placed at it
    page.select_option("#dating-basis", "crl_scan")
    page.fill("#dating-ga", "60+0")
    page.press("#dating-ga", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#dating-error').textContent.includes('10w0d to 44w0d')"
    )
    page.fill("#dating-ga", "20+3")
    page.press("#dating-ga", "Enter")
    page.wait_for_function("() => window.reviewState().gestational_dating?.ga_days === 143")
    assert "GA from dates: 20w3d" in page.locator("#dating-current").inner_text()
    page.locator("section.biometry").screenshot(path=str(SCREENSHOTS / "exam-dating.png"))

    # sign (the summary shows the GA from dates and the centiles at it), then amend with a
    # reason and change a finding under the amendment, then sign again
    page.click("#sign-open")
    page.wait_for_selector("#sign-dialog[open]")
    summary_text = page.locator("#sign-summary").inner_text()
    assert "GA from dates: 20w3d · First-trimester scan (CRL)" in summary_text
    assert "Centiles (INTERGROWTH-21st, at the GA from dates): HC" in summary_text
    page.fill("#sign-password", "e2e-pass")
    page.click("#sign-submit")
    page.wait_for_selector("#locked-banner")
    page.fill("#amend-reason", "FL measured on a foreshortened femur")
    page.click("#amend-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#exam-status').textContent.trim() === 'Amended'"
    )
    page.wait_for_function("() => document.body.dataset.viewer === 'ready'", timeout=30000)
    page.locator(f"tr[data-item='measurement:{ai['FL'].pk}']").click()
    page.keyboard.press("r")
    page.wait_for_selector(f"tr[data-item='measurement:{ai['FL'].pk}'] .dec-rejected")
    amendment = Amendment.objects.get(study=study)
    assert amendment.reason == "FL measured on a foreshortened femur"
    assert [c["what"] for c in amendment.changes] == ["decision"]
    page.click("#sign-open")
    page.wait_for_selector("#sign-dialog[open]")
    assert "FL measured on a foreshortened femur" in page.locator("#sign-summary").inner_text()
    screenshot(page, "sign-off-after-amendment")
    page.fill("#sign-password", "e2e-pass")
    page.click("#sign-submit")
    page.wait_for_selector("#locked-banner")
    study.refresh_from_db()
    assert study.status == ExamStatus.SIGNED
    assert SignOff.objects.filter(study=study).count() == 2
    assert "foreshortened" in page.locator("#amendments").inner_text()
    assert_no_page_errors(page)
    copy_for_docs(["exam-ai-measurements", "sign-off-after-amendment"])


def test_worklist_shows_analysis_progress_live(page, live_server, truth_exam, doctor):
    from django.utils import timezone

    from webapp.analysis.models import AnalysisRun

    run = AnalysisRun.objects.create(
        study=truth_exam,
        status="analysing",
        stage="classifying",
        frames_total=3,
        frames_done=1,
        queued_at=timezone.now(),
    )
    login(page, live_server.url, "dr_e2e", "e2e-pass")
    page.goto(f"{live_server.url}/review/")
    cell = page.locator(f"tr[data-exam='{truth_exam.pk}'] .progress-cell")
    assert "1/3" in cell.inner_text()
    AnalysisRun.objects.filter(pk=run.pk).update(frames_done=2)
    page.wait_for_function(
        "id => document.querySelector(`tr[data-exam='${id}'] .progress-cell`).textContent.includes('2/3')",
        arg=truth_exam.pk,
        timeout=10000,
    )
    AnalysisRun.objects.filter(pk=run.pk).update(frames_done=3, status="done", stage="done")
    page.wait_for_function(
        "id => document.querySelector(`tr[data-exam='${id}'] .progress-cell`).textContent.trim() === 'done'",
        arg=truth_exam.pk,
        timeout=10000,
    )
    assert_no_page_errors(page)
