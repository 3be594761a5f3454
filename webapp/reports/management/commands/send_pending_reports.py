"""Queue what the report pipeline still owes: generations not done, write-backs due.

Run it from cron (e.g. every 10 minutes) so nothing waits forever when a Celery message was lost
(broker restart) — the tasks are idempotent, so queueing one twice does no harm.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from webapp.reports import services


class Command(BaseCommand):
    help = "Queue pending report generations and write-backs that are due."

    def handle(self, *args: Any, **options: Any) -> None:
        generations, writebacks = services.sweep()
        self.stdout.write(
            f"queued {generations} report generation(s) and {writebacks} write-back(s)"
        )
