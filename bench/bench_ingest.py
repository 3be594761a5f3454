"""Ingest throughput for multi-frame US cines, and the cost of serving their frames.

    .venv/bin/python bench/bench_ingest.py [--repeat 5] [--database-url postgres://…/dbname]

Without --database-url a throw-away SQLite database is used; with it (an existing, empty,
migratable PostgreSQL database) the numbers include PostgreSQL. MEDIA_ROOT is a temporary
folder either way. For each cine it prints the median over --repeat runs of one complete
``ingest_file`` (spool + sha256, inspect + frame table, first/last frame decode check, rows,
rename), as MB/s and frames/s, then per-frame costs of the DICOMweb frame route (stored bytes
into a multipart body, no decode: service level, and over the whole Django stack with a signed-in
test client) and of a rendered full-size PNG (decode one frame).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def setup_django(database_url: str | None, media_root: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings.base"
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost,testserver")
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{media_root / 'bench.sqlite3'}"
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def cines(workdir: Path) -> list[tuple[str, Path]]:
    from pydicom.data import get_testdata_file

    found = []
    for name, label in [
        ("color3d_jpeg_baseline.dcm", "JPEG baseline YBR_FULL_422 640×480, 120 frames"),
        ("examples_ybr_color.dcm", "JPEG baseline YBR_FULL_422 320×240, 30 frames"),
        ("OBXXXX1A_rle_2frame.dcm", "RLE palette 800×600, 2 frames"),
    ]:
        path = get_testdata_file(name, download=False)
        if path:
            found.append((label, Path(path)))
    phantom = workdir / "phantom"
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "inference.phantom", "--out", str(phantom), "--cine-frames", "120"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    for path in sorted(phantom.rglob("CINE*.dcm")):
        found.append(("phantom native MONOCHROME2 320×256, 120 frames", path))
    return found


def forget_all() -> None:
    from django.conf import settings

    from webapp.exams.models import IngestEvent, Patient, Study

    for study in Study.objects.all():
        study.delete()
    Patient.objects.all().delete()
    IngestEvent.objects.all().delete()
    import shutil

    shutil.rmtree(Path(settings.MEDIA_ROOT) / "dicom", ignore_errors=True)
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "cache", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sonoreview-bench-") as tmp:
        workdir = Path(tmp)
        setup_django(args.database_url, workdir)
        from django.db import connection

        from webapp.exams import dicomweb, services
        from webapp.exams.models import Instance

        print(f"database: {connection.vendor}; CPU cores: {os.cpu_count()}; repeats: {args.repeat}")
        from django.test import Client

        from webapp.accounts.models import User

        reader, _ = User.objects.get_or_create(username="bench", defaults={"role": "obstetrician"})
        client = Client()
        client.force_login(reader)
        print(
            f"{'cine':52} {'MB':>6} {'frames':>6} {'ingest s':>9} {'MB/s':>7} {'frames/s':>9} "
            f"{'frame ms':>9} {'HTTP ms':>8} {'PNG ms':>7}"
        )
        for label, path in cines(workdir):
            size_mb = path.stat().st_size / 1e6
            times = []
            result = None
            for _ in range(args.repeat):
                forget_all()
                start = time.perf_counter()
                result = services.ingest_file(
                    source=path, file_name=path.name, route="upload", queue=False
                )
                times.append(time.perf_counter() - start)
                assert result.outcome == "stored", result
            elapsed = statistics.median(times)
            frames = result.number_of_frames or 1
            instance = Instance.objects.get(pk=result.instance_id)
            # DICOMweb frame route, service level: stored bytes → multipart (what a cine costs).
            start = time.perf_counter()
            for number in range(1, frames + 1):
                parts = dicomweb.frame_parts(instance, [number], transfer_syntax="*")
                dicomweb.multipart_body(parts)
            frame_ms = (time.perf_counter() - start) / frames * 1000
            # The same through the whole Django stack (session, auth, audit, URL routing).
            base = dicomweb.instance_base_url("", instance)
            accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
            start = time.perf_counter()
            for number in range(1, frames + 1):
                response = client.get(f"{base}/frames/{number}", HTTP_ACCEPT=accept)
                assert response.status_code == 200
            http_ms = (time.perf_counter() - start) / frames * 1000
            # Rendered PNG, full size, a sample of frames (decode one frame each time).
            sample = list(range(1, frames + 1, max(1, frames // 10)))
            start = time.perf_counter()
            for number in sample:
                dicomweb.rendered_frame(instance, number, size=None, image_format="png")
            png_ms = (time.perf_counter() - start) / len(sample) * 1000
            print(
                f"{label:52} {size_mb:6.2f} {frames:6d} {elapsed:9.3f} {size_mb / elapsed:7.1f} "
                f"{frames / elapsed:9.0f} {frame_ms:9.2f} {http_ms:8.2f} {png_ms:7.1f}"
            )
        forget_all()


if __name__ == "__main__":
    main()
