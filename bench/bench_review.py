"""Benchmark: worklist response time with 10,000 exams, and time to first frame on the exam page.

1. Worklist: creates a scratch PostgreSQL database (``test_<name>`` beside DATABASE_URL's, dropped
   afterwards), fills it with ``--exams`` exams (patients, one image each, a finished analysis
   run with three best frames and three measurements per exam, mixed statuses and sonographers),
   then requests ``/review/`` through Django's test client as an obstetrician — the default page,
   a search, a status filter, another sort and a deep page — and prints p50 / p95 / max in ms
   and the SQL queries per request. Target (issue 8): p95 ≤ 150 ms.
2. First frame: ingests a phantom exam through the exams ingest service, starts Django's live
   server, opens the exam page in headless Chromium (Playwright, Debian's /usr/bin/chromium) and
   prints the time from navigation start until the viewer has drawn the first frame, and the
   viewer's own figure (from mounting to the first drawn frame). Target: ≤ 1 s on localhost.

Usage: ``python bench/bench_review.py [--exams 10000] [--requests 200] [--no-browser]``
(uses webapp.settings.test: PostgreSQL and Redis on loopback, or TEST_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.test")
os.environ.setdefault(
    "TEST_DATABASE_URL", "postgres://sonoreview:sonoreview@127.0.0.1:5432/sonoreview_bench"
)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # live server + Playwright's loop


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def fill(n: int) -> None:
    """n exams with what the worklist reads, by bulk inserts (about 10 s per 10,000)."""
    from webapp.accounts.models import User
    from webapp.analysis.models import (
        AnalysisRun,
        BestFrameFinding,
        MeasurementFinding,
        RunStatus,
    )
    from webapp.exams.models import ExamStatus, Instance, Patient, Series, Study

    sonographers = []
    for i in range(5):
        u = User(username=f"bench_sono{i}", role="sonographer")
        u.set_password("pw")
        u.save()
        sonographers.append(u)
    statuses = [
        ExamStatus.READY_FOR_REVIEW,
        ExamStatus.READY_FOR_REVIEW,
        ExamStatus.IN_REVIEW,
        ExamStatus.SIGNED,
        ExamStatus.SIGNED,
        ExamStatus.SIGNED,
        ExamStatus.ANALYSING,
        ExamStatus.RECEIVED,
        ExamStatus.FAILED,
        ExamStatus.AMENDED,
    ]
    batch = 2000
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        patients = Patient.objects.bulk_create(
            Patient(patient_id=f"BENCH-{i:06d}", name=f"BENCH^PATIENT{i:06d}")
            for i in range(start, stop)
        )
        studies = Study.objects.bulk_create(
            Study(
                study_instance_uid=f"2.25.9{i:08d}",
                patient=p,
                source="upload",
                study_date=date(2026, 1, 1) + timedelta(days=i % 300),
                accession_number=f"ACC{i:06d}",
                status=statuses[i % len(statuses)],
                sonographer=sonographers[i % len(sonographers)],
            )
            for i, p in zip(range(start, stop), patients, strict=True)
        )
        series = Series.objects.bulk_create(
            Series(series_instance_uid=f"2.25.8{s.pk:08d}", study=s, modality="US") for s in studies
        )
        instances = Instance.objects.bulk_create(
            Instance(
                sop_instance_uid=f"2.25.7{se.pk:08d}",
                series=se,
                sop_class_uid="1.2.840.10008.5.1.4.1.1.6.1",
                transfer_syntax_uid="1.2.840.10008.1.2.1",
                rows=360,
                columns=480,
                photometric_interpretation="MONOCHROME2",
                bits_allocated=8,
                bits_stored=8,
                file=f"bench/{se.pk}.dcm",
                sha256="0" * 64,
                size_bytes=1,
                pixel_data_offset=0,
                calibration_source="us_regions" if se.pk % 7 else "none",
            )
            for se in series
        )
        runs = AnalysisRun.objects.bulk_create(
            AnalysisRun(study=s, status=RunStatus.DONE, stage="done", frames_total=1, frames_done=1)
            for s in studies
            if s.status not in (ExamStatus.RECEIVED,)
        )
        inst_of = {i.series.study_id: i for i in instances}
        BestFrameFinding.objects.bulk_create(
            BestFrameFinding(
                run=r,
                view_key=v,
                instance=inst_of[r.study_id],
                frame_number=1,
                score=0.8,
                flag=("optimal", "sub_optimal", "absent")[(r.pk + k) % 3],
            )
            for r in runs
            for k, v in enumerate(("head_trans_thalamic", "abdomen_ac", "femur_fl"))
        )
        MeasurementFinding.objects.bulk_create(
            MeasurementFinding(
                run=r,
                instance=inst_of[r.study_id],
                frame_number=1,
                kind=kind,
                geometry_px={"type": "line", "points": [[10, 10], [60, 60]]},
                value_px=70.7,
                value_mm=None if r.pk % 11 == 0 else 23.1,
                confidence=0.3 if r.pk % 13 == 0 else 0.9,
            )
            for r in runs
            for kind in ("HC", "BPD", "OFD")
        )


def bench_worklist(requests: int) -> dict[str, float]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from webapp.accounts.models import User

    dr = User(username="bench_dr", role="obstetrician")
    dr.set_password("pw")
    dr.save()
    client = Client()
    client.force_login(dr)
    variants = [
        {},
        {"q": "PATIENT0042"},
        {"status": "needs_review"},
        {"sort": "patient"},
        {"page": "150"},
        {"status": "signed", "sort": "waiting"},
    ]
    for v in variants:  # warm-up (connections, templates)
        assert client.get("/review/", v).status_code == 200
    # where one default request spends its time: each SQL query, and the total
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        client.get("/review/")
        total = (time.perf_counter() - t0) * 1000
    sql = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
    print(f"one default request: {total:.1f} ms, of which SQL {sql:.1f} ms in {len(ctx)} queries:")
    for q in ctx.captured_queries:
        print(f"    {float(q['time']) * 1000:6.1f} ms  {q['sql'][:150]}")
    if os.environ.get("BENCH_EXPLAIN"):
        with connection.cursor() as cur:
            for q in ctx.captured_queries:
                if q["sql"].startswith("SELECT") and "django_session" not in q["sql"]:
                    cur.execute("EXPLAIN ANALYZE " + q["sql"])
                    plan = [r[0] for r in cur.fetchall()]
                    print("   ", q["sql"][:60], "→", plan[-2].strip(), "|", plan[-1].strip())
                    if os.environ.get("BENCH_EXPLAIN") == "full":
                        print("\n".join("      " + line for line in plan))
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            client.get("/review/")
        prof.disable()
        pstats.Stats(prof).sort_stats(
            os.environ.get("BENCH_PROFILE_SORT", "cumulative")
        ).print_stats(25)
    times: list[float] = []
    per_variant: dict[int, list[float]] = {i: [] for i in range(len(variants))}
    queries = 0
    for i in range(requests):
        v = variants[i % len(variants)]
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            response = client.get("/review/", v)
            elapsed = (time.perf_counter() - t0) * 1000
        assert response.status_code == 200
        queries = max(queries, len(ctx))
        times.append(elapsed)
        per_variant[i % len(variants)].append(elapsed)
    print(
        f"worklist /review/ over {requests} requests ({len(variants)} variants: default, search, "
        "status filter, sort by patient, page 150, signed+waiting):"
    )
    print(
        f"  p50 {statistics.median(times):.1f} ms · p95 {percentile(times, 95):.1f} ms · "
        f"max {max(times):.1f} ms · at most {queries} SQL queries per request"
    )
    for i, v in enumerate(variants):
        print(
            f"    {str(v) or 'default':<40} p50 {statistics.median(per_variant[i]):6.1f} ms  "
            f"p95 {percentile(per_variant[i], 95):6.1f} ms"
        )
    # the query layer alone (no HTTP, no template, no audit row)
    from webapp.review import worklist

    service: list[float] = []
    for i in range(requests):
        v = variants[i % len(variants)]
        t0 = time.perf_counter()
        worklist.page_of(
            dr,
            status=v.get("status", ""),
            q=v.get("q", ""),
            sort=v.get("sort", "-date"),
            page=v.get("page", 1),
        )
        service.append((time.perf_counter() - t0) * 1000)
    print(
        f"  worklist.page_of alone: p50 {statistics.median(service):.1f} ms · "
        f"p95 {percentile(service, 95):.1f} ms"
    )
    print(f"  (load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return {"p50": statistics.median(times), "p95": percentile(times, 95)}


def bench_first_frame(repeats: int) -> None:
    from django.test.testcases import LiveServerThread
    from django.test.utils import override_settings

    from inference.phantom.dicom import ExamIds, phantom_uid, write_us_image
    from inference.phantom.generator import make_frame
    from webapp.accounts.models import User
    from webapp.exams import services
    from webapp.exams.models import ExamStatus, Study

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("first frame: skipped (playwright is not installed)")
        return
    if not Path("/usr/bin/chromium").exists():
        print("first frame: skipped (/usr/bin/chromium is not installed)")
        return
    out = Path(tempfile.mkdtemp(prefix="bench-review-"))
    ids = ExamIds.for_exam(777, 1, "bench first frame")
    f = make_frame("fetal_brain", brain_plane="trans_thalamic", seed=777, shape=(360, 480))
    path = write_us_image(
        out / "IMG001.dcm",
        f.image,
        fov=f.fov,
        pixel_mm=f.pixel_mm,
        ids=ids,
        series_uid=phantom_uid(777, "series"),
        sop_uid=phantom_uid(777, "sop"),
    )
    result = services.ingest_file(source=path, file_name=path.name, route="upload", queue=False)
    study = Study.objects.get(pk=result.study_id)
    for status in (ExamStatus.QUEUED, ExamStatus.ANALYSING, ExamStatus.READY_FOR_REVIEW):
        study.transition_to(status)
    dr = User.objects.get(username="bench_dr")
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    server = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override=None, port=0)
    server.daemon = True
    with override_settings(ALLOWED_HOSTS=["*"]):
        server.start()
        server.is_ready.wait()
        base = f"http://127.0.0.1:{server.port}"
        args = [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
        ]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{base}/accounts/login/")
            page.fill("input[name=username]", dr.username)
            page.fill("input[name=password]", "pw")
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            since_nav, viewer_ms = [], []
            for i in range(repeats):
                page.goto(f"{base}/review/exams/{study.pk}/")
                page.wait_for_function("() => document.body.dataset.viewer", timeout=30000)
                state = page.evaluate("document.body.dataset.viewer")
                if state != "ready":
                    print(
                        f"first frame: the viewer did not draw ({state}): "
                        f"{page.locator('#notice').inner_text()}"
                    )
                    break
                info = page.evaluate("window.examViewerReady")
                since_nav.append(info["sinceNavigationMs"])
                viewer_ms.append(info["firstRenderMs"])
                if i == 0:
                    print(
                        f"  first load (cold browser cache): {info['sinceNavigationMs']:.0f} ms "
                        "from navigation start"
                    )
            browser.close()
        server.terminate()
    if since_nav:
        print(f"first frame on the exam page ({len(since_nav)} loads, 480×360 phantom, localhost):")
        print(
            f"  from navigation start: p50 {statistics.median(since_nav):.0f} ms · "
            f"max {max(since_nav):.0f} ms; viewer mount → first frame p50 "
            f"{statistics.median(viewer_ms):.0f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exams", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--frames", type=int, default=10, help="exam page loads to time")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        t0 = time.perf_counter()
        fill(args.exams)
        from django.db import connection

        with connection.cursor() as cur:
            # What autovacuum does after bulk loads; without statistics the planner seq-scans.
            cur.execute("ANALYZE")
        print(f"created {args.exams} exams with findings in {time.perf_counter() - t0:.1f} s")
        result = bench_worklist(args.requests)
        if not args.no_browser:
            bench_first_frame(args.frames)
        print(f"target worklist p95 ≤ 150 ms: {'met' if result['p95'] <= 150 else 'NOT met'}")
    finally:
        from django.db import connections

        connections.close_all()
        teardown_databases(old, verbosity=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
