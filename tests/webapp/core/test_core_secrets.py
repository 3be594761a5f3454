"""PACS passwords and tokens are encrypted at rest and survive a key rotation done properly.

Specification: the database column never holds the plaintext; the model reads it back in clear;
with the old key kept in SECRET_KEY_FALLBACKS old values still open; without it the value reads
as unreadable, pages keep working, a connection attempt says what to do, and saving the row does
not destroy the sealed value. The admin never sends a secret back to the browser.
"""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from webapp.core.secrets import PREFIX, SecretUnreadable, UnreadableSecret, seal, unseal
from webapp.exams import services
from webapp.exams.models import PacsNode

pytestmark = pytest.mark.django_db


def stored_column(node: PacsNode, column: str) -> str:
    with connection.cursor() as cur:
        cur.execute(f"SELECT {column} FROM exams_pacsnode WHERE id = %s", [node.pk])
        return cur.fetchone()[0]


def make_node(**secrets: str) -> PacsNode:
    return PacsNode.objects.create(
        name="hospital-pacs",
        dicomweb_url="http://127.0.0.1:9/dicom-web",
        auth_type=PacsNode.Auth.BASIC,
        username="sonoreview",
        **secrets,
    )


def test_the_database_holds_only_the_sealed_secret() -> None:
    node = make_node(password="s3cret-Päss", bearer_token="tok.en")
    raw = stored_column(node, "password")
    assert raw.startswith(PREFIX) and "s3cret" not in raw
    assert stored_column(node, "bearer_token").startswith(PREFIX)
    again = PacsNode.objects.get(pk=node.pk)
    assert (again.password, again.bearer_token) == ("s3cret-Päss", "tok.en")
    client = services.dicomweb_client_for(again)
    assert client._session.auth == ("sonoreview", "s3cret-Päss")
    assert seal("") == "" and unseal("legacy plain") == "legacy plain"


def test_a_rotated_key_opens_old_secrets_only_with_the_fallback(settings) -> None:
    node = make_node(password="before-rotation")
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-key-after-rotation"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert PacsNode.objects.get(pk=node.pk).password == "before-rotation"

    settings.SECRET_KEY_FALLBACKS = []
    lost = PacsNode.objects.get(pk=node.pk)
    assert isinstance(lost.password, UnreadableSecret) and lost.password == ""
    with pytest.raises(SecretUnreadable, match=r"password of PACS hospital-pacs.*enter it again"):
        services.dicomweb_client_for(lost)
    sealed_before = stored_column(node, "password")
    lost.ae_title = "PACS1"
    lost.save()  # an unrelated edit keeps the sealed value as it was
    assert stored_column(node, "password") == sealed_before

    settings.SECRET_KEY = old_key
    assert PacsNode.objects.get(pk=node.pk).password == "before-rotation"


def test_admin_never_shows_the_secret_and_blank_keeps_it(client_as) -> None:
    node = make_node(password="keep-me")
    client = client_as("admin")
    url = f"/admin/exams/pacsnode/{node.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and b"keep-me" not in page.content
    form = {
        "name": node.name,
        "dicomweb_url": node.dicomweb_url,
        "auth_type": "basic",
        "username": "sonoreview",
        "password": "",
        "bearer_token": "",
        "ae_title": "PACS1",
        "timeout_seconds": 60,
        "is_active": "on",
    }
    assert client.post(url, form).status_code == 302
    node.refresh_from_db()
    assert (node.ae_title, node.password) == ("PACS1", "keep-me")
    assert client.post(url, {**form, "password": "new-one"}).status_code == 302
    node.refresh_from_db()
    assert node.password == "new-one"
    assert client.post(url, {**form, "clear_secrets": "on"}).status_code == 302
    node.refresh_from_db()
    assert node.password == "" and stored_column(node, "password") == ""


def test_the_migration_seals_secrets_stored_in_plain_text() -> None:
    node = make_node()
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE exams_pacsnode SET password = %s, bearer_token = %s WHERE id = %s",
            ["plain-old", "", node.pk],
        )
    migration = importlib.import_module("webapp.exams.migrations.0003_seal_pacs_secrets")
    migration.seal_stored_secrets(apps, None)
    assert stored_column(node, "password").startswith(PREFIX)
    assert stored_column(node, "bearer_token") == ""
    assert PacsNode.objects.get(pk=node.pk).password == "plain-old"
