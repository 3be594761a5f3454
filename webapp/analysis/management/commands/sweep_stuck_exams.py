"""``manage.py sweep_stuck_exams``: re-queue exams whose analysis message was lost.

Exams stay ``received`` / ``queued`` when the broker was down as they arrived, and a run stays
``analysing`` when a message vanished. This re-publishes what each still needs (idempotent); the
Celery task ``webapp.analysis.tasks.sweep_stuck_exams`` does the same on a beat schedule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webapp.analysis import services


class Command(BaseCommand):
    help = "Re-queue exams stuck in received / queued / analysing for longer than N minutes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-minutes",
            type=float,
            default=10.0,
            help="only exams waiting longer than this (default 10)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        minutes = options["older_than_minutes"]
        actions = services.sweep_stuck(older_than=timedelta(minutes=minutes))
        for line in actions:
            self.stdout.write(line)
        self.stdout.write(f"{len(actions)} exams re-queued (stuck longer than {minutes:g} min)")
