"""The top-bar navigation per role.

Each entry names a URL by its Django name; entries whose URL does not exist (yet) are left out,
so an app can land its page later and the link appears by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from webapp.accounts.models import Role


@dataclass(frozen=True)
class Link:
    label: str
    url: str | None  # None: the page is not part of this installation yet


# (label, URL name) per role, in the order they appear.
NAVIGATION: dict[str, tuple[tuple[str, str], ...]] = {
    Role.SONOGRAPHER: (
        ("My exams", "exams:study_list"),
        ("Send an exam", "exams:upload"),
        ("Pull from PACS", "exams:pacs"),
        ("My feedback", "teaching:my_feedback"),
    ),
    Role.OBSTETRICIAN: (
        ("Worklist", "review:worklist"),
        ("All exams", "exams:study_list"),
    ),
    Role.SUPERVISOR: (
        ("Grading queue", "teaching:grading_queue"),
        ("Trainees", "teaching:trainees"),
        ("Exams", "exams:study_list"),
    ),
    Role.ADMIN: (
        ("Users", "admin:accounts_user_changelist"),
        ("PACS nodes", "admin:exams_pacsnode_changelist"),
        ("Model versions", "admin:analysis_modelversion_changelist"),
        ("Audit trail", "review:audit"),
        ("Exams", "exams:study_list"),
        ("Django admin", "admin:index"),
    ),
}


def resolve(url_name: str) -> str | None:
    try:
        return reverse(url_name)
    except NoReverseMatch:
        return None


def links_for(role: str, *, include_missing: bool = False) -> list[Link]:
    """The role's links; missing pages are dropped unless ``include_missing``."""
    links = [Link(label, resolve(name)) for label, name in NAVIGATION.get(role, ())]
    return [link for link in links if include_missing or link.url is not None]
