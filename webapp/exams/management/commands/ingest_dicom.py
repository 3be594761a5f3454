"""``manage.py ingest_dicom PATH…``: ingest DICOM files, folders (recursively), zips, PNG/JPEG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.exams import services
from webapp.exams.models import ExamSource


class Command(BaseCommand):
    help = (
        "Ingest DICOM files, folders of them (recursively), zip archives and PNG/JPEG images "
        "exactly as a browser upload would. Prints one line per file; exits 1 if any was rejected."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--user", help="username recorded as the uploader")

    def handle(self, *args: Any, paths: list[Path], user: str | None, **options: Any) -> None:
        uploader = None
        if user:
            from django.contrib.auth import get_user_model

            uploader = get_user_model().objects.filter(username=user).first()
            if uploader is None:
                raise CommandError(f"no user named {user!r}")
        files: list[tuple[str, Path]] = []
        for path in paths:
            if path.is_dir():
                files.extend(
                    (str(p), p)
                    for p in sorted(path.rglob("*"))
                    if p.is_file() and not p.name.startswith(".")
                )
            elif path.is_file():
                files.append((str(path), path))
            else:
                raise CommandError(f"{path} does not exist")
        results = services.ingest_batch(
            files=files, route=ExamSource.UPLOAD, user=uploader, peer="manage.py"
        )
        for r in results:
            detail = (
                r.reason
                if r.outcome != "stored"
                else f"{r.number_of_frames} frame(s), study {r.study_instance_uid}"
            )
            self.stdout.write(f"{r.outcome:9} {r.file_name}: {detail}")
        counts = {
            k: sum(r.outcome == k for r in results) for k in ("stored", "duplicate", "rejected")
        }
        self.stdout.write(
            f"{counts['stored']} stored, {counts['duplicate']} already received, {counts['rejected']} rejected"
        )
        if counts["rejected"]:
            raise SystemExit(1)
