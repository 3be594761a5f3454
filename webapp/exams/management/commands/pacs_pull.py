"""``manage.py pacs_pull --node NAME (--since DATE | --study UID…)``: scheduled PACS pulls."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.exams import services
from webapp.exams.models import PacsNode


class Command(BaseCommand):
    help = (
        "Import studies from a configured PACS over DICOMweb (QIDO-RS search, WADO-RS retrieve). "
        "Already-received instances are skipped. Exits 1 if any instance was rejected."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--node", required=True, help="PacsNode name")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--since", help="YYYY-MM-DD, or 'today' / 'yesterday'")
        group.add_argument("--study", action="append", help="Study Instance UID (repeatable)")
        parser.add_argument("--modality", default="US")

    def handle(
        self,
        *args: Any,
        node: str,
        since: str | None,
        study: list[str] | None,
        modality: str,
        **options: Any,
    ) -> None:
        services.ensure_configured_pacs_node()
        pacs = PacsNode.objects.filter(name=node, is_active=True).first()
        if pacs is None:
            names = ", ".join(PacsNode.objects.values_list("name", flat=True)) or "none configured"
            raise CommandError(f"no active PACS node named {node!r} (known: {names})")
        try:
            if since is not None:
                start = _parse_since(since)
                uids = services.studies_on_pacs_since(node=pacs, since=start, modality=modality)
                self.stdout.write(f"{len(uids)} {modality} studies on {pacs.name} since {start}")
            else:
                uids = study or []
            rejected = 0
            for uid in uids:
                results = services.import_study_from_pacs(node=pacs, study_instance_uid=uid)
                for r in results:
                    self.stdout.write(f"{r.outcome:9} {r.file_name}: {r.reason or 'ok'}")
                rejected += sum(r.outcome == "rejected" for r in results)
        except OSError as exc:
            raise CommandError(
                f"PACS {pacs.name} at {pacs.dicomweb_url} is unreachable ({exc})"
            ) from exc
        if rejected:
            raise SystemExit(1)


def _parse_since(text: str) -> date:
    if text == "today":
        return date.today()
    if text == "yesterday":
        return date.today() - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"--since {text!r} is not a date (YYYY-MM-DD)") from exc
