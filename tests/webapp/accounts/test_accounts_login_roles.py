"""Sign-in, sign-out, the landing page of each role, and require_role (redirect vs 403)."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.views import View

from webapp.accounts.roles import RoleRequiredMixin, require_role
from webapp.core.views import landing_url

pytestmark = pytest.mark.django_db

LANDING = {
    "sonographer": ("/home/sonographer/", "My exams"),
    "obstetrician": ("/home/obstetrician/", "Worklist"),
    "supervisor": ("/home/supervisor/", "Grading queue"),
    "admin": ("/home/admin/", "Administration"),
}


def test_login_page_renders_a_form(client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Sign in</h1>" in html
    assert 'name="username"' in html and 'name="password"' in html
    assert "csrfmiddlewaretoken" in html


@pytest.mark.parametrize("role", sorted(LANDING))
def test_login_lands_on_the_role_page(client, make_user, role: str) -> None:
    make_user(role, username=f"u-{role}")
    response = client.post(
        "/accounts/login/", {"username": f"u-{role}", "password": "pw"}, follow=True
    )
    url = landing_url(role)
    assert response.redirect_chain == [("/", 302), (url, 302)]
    assert response.status_code == 200
    assert response.request["PATH_INFO"] == url


@pytest.mark.parametrize("role", sorted(LANDING))
def test_role_placeholder_pages(client_as, role: str) -> None:
    url, heading = LANDING[role]
    response = client_as(role).get(url)
    assert response.status_code == 200
    assert f"<h1>{heading}</h1>" in response.content.decode()


def test_landing_prefers_the_real_working_page_once_it_exists() -> None:
    from django.urls import NoReverseMatch, reverse

    try:
        worklist = reverse("review:worklist")
    except NoReverseMatch:
        worklist = "/home/obstetrician/"
    assert landing_url("obstetrician") == worklist
    assert landing_url("admin") == "/home/admin/"


def test_wrong_password_shows_an_error_and_stays_signed_out(client, make_user) -> None:
    make_user("obstetrician", username="dr")
    response = client.post("/accounts/login/", {"username": "dr", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert client.get("/").status_code == 302


def test_logout_needs_post_and_ends_the_session(client_as) -> None:
    client = client_as("supervisor")
    assert client.get("/home/supervisor/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    after = client.get("/home/supervisor/")
    assert after.status_code == 302
    assert after["Location"] == "/accounts/login/?next=/home/supervisor/"


def test_anonymous_visitor_is_sent_to_login_with_next(client) -> None:
    response = client.get("/home/obstetrician/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/home/obstetrician/"


def test_wrong_role_gets_a_403_page_that_says_why(client_as) -> None:
    client = client_as("sonographer", username="sam")
    response = client.get("/home/obstetrician/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>Not allowed</h1>" in html
    assert "This page is for obstetricians. You are signed in as sam (sonographer)" in html


def test_top_bar_shows_user_role_trainee_and_sign_out(client_as) -> None:
    client = client_as("sonographer", username="tess", first_name="Tess", is_trainee=True)
    html = client.get("/home/sonographer/").content.decode()
    assert '<span class="user">Tess</span>' in html
    assert "Sonographer · trainee" in html
    assert 'action="/accounts/logout/"' in html


def test_admin_landing_links_to_the_user_admin(client_as) -> None:
    html = client_as("admin").get("/home/admin/").content.decode()
    assert '<a class="tile" href="/admin/accounts/user/">Users</a>' in html
    assert '<a href="/health/">' in html


def test_admin_role_may_use_the_django_admin_and_others_may_not(client_as, make_user) -> None:
    admin_user = make_user("admin", username="ada", is_superuser=True)
    assert admin_user.is_staff is True  # the admin role implies staff
    from django.test import Client

    admin_client = Client()
    admin_client.force_login(admin_user)
    page = admin_client.get("/admin/accounts/user/")
    assert page.status_code == 200
    assert (
        "Clinical role"
        in admin_client.get(f"/admin/accounts/user/{admin_user.pk}/change/").content.decode()
    )
    other = client_as("obstetrician")
    assert other.get("/admin/accounts/user/").status_code == 302


def test_superuser_passes_every_role_check(client, make_user) -> None:
    client.force_login(make_user("sonographer", is_superuser=True))
    assert client.get("/home/supervisor/").status_code == 200


def test_require_role_decorator_and_mixin_directly(make_user) -> None:
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied

    @require_role("supervisor", "obstetrician")
    def view(request):
        return HttpResponse("ok")

    class ClassView(RoleRequiredMixin, View):
        required_roles = ("supervisor",)

        def get(self, request):
            return HttpResponse("ok")

    factory = RequestFactory()
    request = factory.get("/x/")
    request.user = AnonymousUser()
    assert view(request)["Location"] == "/accounts/login/?next=/x/"
    assert ClassView.as_view()(request)["Location"] == "/accounts/login/?next=/x/"

    request.user = make_user("obstetrician")
    assert view(request).content == b"ok"
    with pytest.raises(PermissionDenied, match="This page is for supervisors"):
        ClassView.as_view()(request)

    request.user = make_user("sonographer", is_active=False)
    with pytest.raises(PermissionDenied):
        view(request)
    assert view.required_roles == ("supervisor", "obstetrician")


def test_require_role_rejects_unknown_roles() -> None:
    with pytest.raises(ValueError, match="require_role needs roles from"):
        require_role("surgeon")
    with pytest.raises(ValueError):
        require_role()


def test_navigation_follows_the_role_and_hides_pages_not_built_yet(client_as) -> None:
    from webapp.core.navigation import links_for

    html = client_as("sonographer").get("/home/sonographer/").content.decode()
    nav = html.split('<nav class="mainnav"', 1)[1].split("</nav>", 1)[0]
    expected = [link for link in links_for("sonographer") if link.url]
    assert [link.label for link in expected][:2] == ["My exams", "Send an exam"]
    for link in expected:
        assert f'<a href="{link.url}">{link.label}</a>' in nav
    assert "Grading queue" not in nav and "Users" not in nav
    pending = [
        link.label for link in links_for("sonographer", include_missing=True) if not link.url
    ]
    for label in pending:  # shown on the landing page as "not available yet", not as a dead link
        assert f"{label} <small>not available yet</small>" in html


def test_admin_role_without_superuser_flag_manages_users_in_django_admin(client, make_user):
    admin_user = make_user("admin", username="ops")
    assert (admin_user.is_staff, admin_user.is_superuser) == (True, False)
    client.force_login(admin_user)
    changelist = client.get("/admin/accounts/user/")
    assert changelist.status_code == 200
    assert "ops" in changelist.content.decode()
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "newdoc",
            "password1": "Zx9!long-pass",
            "password2": "Zx9!long-pass",
            "usable_password": "true",
            "role": "obstetrician",
            "is_trainee": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    from webapp.accounts.models import User

    assert User.objects.get(username="newdoc").role == "obstetrician"
