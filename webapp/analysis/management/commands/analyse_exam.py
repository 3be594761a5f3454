"""``manage.py analyse_exam EXAM…``: analyse exams now, with a progress bar.

EXAM is a study id or Study Instance UID. By default the analysis is queued for the workers and
the command follows its progress; ``--inline`` runs it in this process (no broker or worker
needed). ``--force`` starts a new run even when the exam was analysed before (e.g. after a new
model version); the earlier runs and their findings are kept.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference.planes import taxonomy
from webapp.analysis import services
from webapp.analysis.models import AnalysisRun, RunStatus
from webapp.exams.models import Study


def bar(done: int, total: int, width: int = 30) -> str:
    """``[#########-----]  45/100 frames`` (total 0 shows an empty bar)."""
    filled = int(width * done / total) if total else 0
    return f"[{'#' * filled}{'-' * (width - filled)}] {done:>5}/{total} frames"


class Command(BaseCommand):
    help = (
        "Analyse exams (queued for the workers, or --inline in this process) with a progress bar."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("exams", nargs="+", help="study ids or Study Instance UIDs")
        parser.add_argument("--inline", action="store_true", help="run here, not on the workers")
        parser.add_argument("--force", action="store_true", help="a new run even if analysed")
        parser.add_argument(
            "--protocol", default=services.DEFAULT_PROTOCOL, choices=sorted(taxonomy.PROTOCOLS)
        )
        parser.add_argument(
            "--timeout", type=float, default=600.0, help="seconds to follow queued runs"
        )
        parser.add_argument("--no-wait", action="store_true", help="queue and return")

    def handle(self, *args: Any, **options: Any) -> None:
        studies = [self._study(ref) for ref in options["exams"]]
        failed = 0
        for study in studies:
            try:
                run = services.request_analysis(
                    study_id=study.pk,
                    trigger="command",
                    protocol=options["protocol"],
                    force=options["force"] or study.status == "failed",
                    dispatch=not options["inline"],
                )
            except services.AnalysisRefused as exc:
                raise CommandError(str(exc)) from None
            if run is None:
                self.stdout.write(
                    f"exam {study.pk}: {study.get_status_display().lower()}; nothing to do "
                    "(use --force to analyse it again)"
                )
                continue
            self.stdout.write(f"exam {study.pk} ({study.study_instance_uid}): run {run.pk}")
            started = time.monotonic()
            if options["inline"]:
                try:
                    run = services.run_inline(run_id=run.pk, on_progress=self._draw)
                except Exception as exc:
                    self._end_line()
                    self.stderr.write(f"exam {study.pk}: analysis failed: {exc}")
                    failed += 1
                    continue
            elif options["no_wait"]:
                continue
            else:
                run = self._follow(run.pk, options["timeout"])
            self._draw(run)
            self._end_line()
            elapsed = time.monotonic() - started
            if run.status == RunStatus.DONE:
                best = services.completeness(study=study)
                self.stdout.write(
                    f"exam {study.pk}: ready for review in {elapsed:.1f} s; "
                    f"{run.frames_total} frames ({run.frames_failed} failed); planes found "
                    f"{best['found']}/{best['required']} (missing: {', '.join(best['missing']) or 'none'})"
                )
            else:
                failed += 1
                self.stderr.write(
                    f"exam {study.pk}: {run.get_status_display().lower()} after {elapsed:.1f} s"
                    + (f": {run.error}" if run.error else "")
                )
        if failed:
            raise CommandError(f"{failed} of {len(studies)} exams were not analysed")

    def _study(self, ref: str) -> Study:
        query = Study.objects.filter(pk=int(ref)) if ref.isdigit() else None
        if query is None or not query.exists():
            query = Study.objects.filter(study_instance_uid=ref)
        study = query.first()
        if study is None:
            raise CommandError(f"no exam with id or Study Instance UID {ref!r}")
        return study

    def _follow(self, run_id: int, timeout: float) -> AnalysisRun:
        deadline = time.monotonic() + timeout
        while True:
            run = AnalysisRun.objects.get(pk=run_id)
            self._draw(run)
            if run.status in (RunStatus.DONE, RunStatus.FAILED) or time.monotonic() > deadline:
                return run
            time.sleep(0.5)

    def _draw(self, run: AnalysisRun) -> None:
        line = f"\r  {bar(run.frames_done, run.frames_total)}  {run.get_stage_display():<28}"
        stream = self.stdout
        if stream.isatty() if hasattr(stream, "isatty") else sys.stdout.isatty():
            stream.write(line, ending="")
            stream.flush()
        self._last = line

    def _end_line(self) -> None:
        last = getattr(self, "_last", "")
        if last and not (self.stdout.isatty() if hasattr(self.stdout, "isatty") else False):
            self.stdout.write(last.lstrip("\r"))
        else:
            self.stdout.write("")
