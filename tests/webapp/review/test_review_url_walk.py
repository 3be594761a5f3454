"""Every URL pattern of the project, for every role and for an anonymous visitor, GET and POST.

Generic on purpose: the patterns come from Django's resolver, so a new app's URLs are walked
without touching this file. Path parameters are filled with a real exam's ids (pk, study / series
/ SOP instance UIDs, frame 1), so the views get past their lookups. Asserted everywhere: no 5xx
(the health probe may say 503 when no worker runs), nothing but the login page and the health
probe answers an anonymous visitor with 200, and a sonographer gets no other sonographer's exam.
For the review app's own URLs the exact status per role is asserted.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

ROLES = ("anonymous", "sonographer", "obstetrician", "supervisor", "admin")
ANONYMOUS_200_ALLOWED = {"accounts:login", "core:health", "admin:login"}
MAY_BE_UNAVAILABLE = {"core:health"}  # 503 when a service is down: the probe's answer, not a crash

# review URL name -> expected GET status per role (exam owned by another sonographer)
REVIEW_GET = {
    "review:worklist": {
        "anonymous": 302,
        "sonographer": 200,
        "obstetrician": 200,
        "supervisor": 200,
        "admin": 403,
    },
    "review:signed": {
        "anonymous": 302,
        "sonographer": 200,
        "obstetrician": 200,
        "supervisor": 200,
        "admin": 403,
    },
    "review:next": {
        "anonymous": 302,
        "sonographer": 302,
        "obstetrician": 302,
        "supervisor": 302,
        "admin": 403,
    },
    "review:audit": {
        "anonymous": 302,
        "sonographer": 403,
        "obstetrician": 403,
        "supervisor": 403,
        "admin": 200,
    },
    "review:exam": {
        "anonymous": 302,
        "sonographer": 404,
        "obstetrician": 200,
        "supervisor": 200,
        "admin": 403,
    },
    "review:state": {
        "anonymous": 401,
        "sonographer": 404,
        "obstetrician": 200,
        "supervisor": 200,
        "admin": 403,
    },
    "review:summary": {
        "anonymous": 401,
        "sonographer": 403,
        "obstetrician": 200,
        "supervisor": 403,
        "admin": 403,
    },
}
# POST-only review endpoints: GET is 405 for all; POST with an empty JSON object:
REVIEW_POST = {
    name: {
        "anonymous": 401,
        "sonographer": 403,
        "obstetrician": 400,
        "supervisor": 403,
        "admin": 403,
    }
    for name in (
        "review:preview",
        "review:decide",
        "review:measure",
        "review:relabel",
        "review:dating",
        "review:sign",
        "review:amend",
    )
}


def walk(resolver: URLResolver, prefix: str = "", namespace: str | None = None):
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = ":".join(x for x in (namespace, p.namespace) if x) or None
            yield from walk(p, prefix + _route(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield prefix + _route(p.pattern), name


def _route(pattern: Any) -> str:
    text = str(pattern)
    if type(pattern).__name__ == "RegexPattern":

        def group(m: re.Match) -> str:
            body = m.group(2)
            if re.fullmatch(r"[\w|]+", body):
                return "{" + m.group(1) + "=" + body.split("|")[0] + "}"
            return "{" + m.group(1) + "}"

        text = re.sub(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)", group, text)
        text = text.replace("^", "").replace("$", "").replace("\\", "")
    else:
        text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)
    return text


def fill(route: str, values: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        name, _, fixed = m.group(1).partition("=")
        return fixed or values.get(name, "1")

    return "/" + re.sub(r"\{([^}]+)\}", one, route)


@pytest.fixture
def world(analysed_exam, make_user):
    owner = make_user("sonographer", username="owner_sono")
    study = analysed_exam(sonographer=owner)
    instance = study.series.first().instances.first()
    values = {
        "pk": str(study.pk),
        "study_id": str(study.pk),
        "number": "1",
        "frames": "1",
        "study_uid": study.study_instance_uid,
        "series_uid": instance.series.series_instance_uid,
        "sop_uid": instance.sop_instance_uid,
        "object_id": "1",
        "content_type_id": "1",
    }
    users = {role: make_user(role, username=f"walker_{role}") for role in ROLES[1:]}
    return study, values, users


def test_every_url_for_every_role(world, client):
    study, values, users = world
    routes = [(fill(route, values), name) for route, name in walk(get_resolver())]
    assert len(routes) > 50
    seen_names = {name for _, name in routes}
    assert set(REVIEW_GET) | set(REVIEW_POST) <= seen_names
    problems: list[str] = []
    for role in ROLES:
        client.logout()
        if role != "anonymous":
            client.force_login(users[role])
        for url, name in routes:
            if name and name.endswith(":logout"):
                continue  # would end this role's session mid-walk; covered by accounts tests
            get = client.get(url)
            post = client.post(url, data=json.dumps({}), content_type="application/json")
            for method, response in (("GET", get), ("POST", post)):
                code = response.status_code
                if code >= 500 and not (name in MAY_BE_UNAVAILABLE and code == 503):
                    problems.append(f"{role} {method} {url} ({name}) → {code}")
            if role == "anonymous" and get.status_code == 200 and name not in ANONYMOUS_200_ALLOWED:
                problems.append(f"anonymous GET {url} ({name}) → 200 without signing in")
            if name in REVIEW_GET and get.status_code != REVIEW_GET[name][role]:
                problems.append(
                    f"{role} GET {url} ({name}) → {get.status_code}, expected {REVIEW_GET[name][role]}"
                )
            if name in REVIEW_POST:
                if get.status_code != 405:
                    problems.append(f"{role} GET {url} ({name}) → {get.status_code}, expected 405")
                if post.status_code != REVIEW_POST[name][role]:
                    problems.append(
                        f"{role} POST {url} ({name}) → {post.status_code}, expected {REVIEW_POST[name][role]}"
                    )
            if (
                role == "sonographer"
                and name
                and name.startswith(("exams:", "analysis:"))
                and get.status_code == 200
            ):
                body = get.content[:200000]
                if study.patient.patient_id.encode() in body:
                    problems.append(f"sonographer saw another sonographer's exam at {url} ({name})")
    assert not problems, "\n".join(problems)
