"""Parsing configuration from the environment: every mistake is one clear sentence."""

from __future__ import annotations

import pytest

from webapp.settings.env import (
    ConfigurationError,
    database_url_from_settings,
    env_bool,
    env_int,
    env_list,
    parse_broker_url,
    parse_database_url,
    redact_url,
)


def test_postgres_url_becomes_django_settings_with_timeout_and_persistent_connections() -> None:
    config = parse_database_url("postgres://sono:s%40cret@db.example:6543/sonoreview").as_django()
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("sonoreview", "sono", "s@cret")
    assert (config["HOST"], config["PORT"]) == ("db.example", "6543")
    assert config["CONN_MAX_AGE"] == 60
    assert config["OPTIONS"] == {"connect_timeout": "5"}


def test_postgres_url_query_options_are_kept_and_override_the_default_timeout() -> None:
    config = parse_database_url("postgresql://u@h/db?sslmode=require&connect_timeout=2").as_django()
    assert config["OPTIONS"] == {"sslmode": "require", "connect_timeout": "2"}


def test_sqlite_urls_absolute_and_relative() -> None:
    assert parse_database_url("sqlite:////srv/demo.sqlite3").name == "/srv/demo.sqlite3"
    assert parse_database_url("sqlite:///var/demo.sqlite3").name == "var/demo.sqlite3"
    assert "CONN_MAX_AGE" not in parse_database_url("sqlite:////tmp/x.db").as_django()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://u@h/db", "DATABASE_URL scheme 'mysql' is not supported"),
        ("postgres://u@h:5432/", "names no database"),
        ("postgres://u@h:port/db", "has a port that is not a number"),
        ("postgres:///db", "names no host"),
        ("localhost:5432/db", "is not a URL"),
        ("sqlite:relative.db", "is not a URL"),
        ("sqlite://relative.db", "must look like sqlite:///path/to/file"),
    ],
)
def test_malformed_database_urls_are_named(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        parse_database_url(url)


def test_database_url_errors_never_echo_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_database_url("postgres://sono:topsecret@h:99999999x/db")
    assert "topsecret" not in str(info.value)
    assert "postgres://sono:***@h:99999999x/db" in str(info.value)


def test_redact_url() -> None:
    assert redact_url("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://guest@rabbit//", "is not a Redis URL"),
        ("redis://cache:abc/0", "port that is not a number"),
        ("redis://cache:6379/zero", "database 'zero' is not a number"),
    ],
)
def test_malformed_broker_urls_are_named(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        parse_broker_url(url)


def test_broker_url_accepted() -> None:
    assert parse_broker_url(" redis://127.0.0.1:6379/14 ") == "redis://127.0.0.1:6379/14"


def test_env_bool_int_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "Yes")
    monkeypatch.setenv("NUM", "42")
    monkeypatch.setenv("HOSTS", " a.example, ,b.example ")
    monkeypatch.setenv("EMPTY", "")
    assert env_bool("FLAG") is True
    assert env_bool("EMPTY", default=True) is True
    assert env_int("NUM", 1) == 42
    assert env_list("HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ConfigurationError, match=r"FLAG='maybe' is not a boolean"):
        env_bool("FLAG")
    monkeypatch.setenv("NUM", "4x")
    with pytest.raises(ConfigurationError, match=r"NUM='4x' is not a whole number"):
        env_int("NUM", 1)
    with pytest.raises(ConfigurationError, match=r"NUM=42 is outside 1…10"):
        monkeypatch.setenv("NUM", "42")
        env_int("NUM", 1, minimum=1, maximum=10)


def test_database_url_round_trips_through_django_settings() -> None:
    url = "postgres://sono:p%40ss@db.example:6543/sonoreview"
    settings_dict = parse_database_url(url).as_django()
    assert database_url_from_settings(settings_dict) == url
    assert database_url_from_settings(settings_dict, name="test_x").endswith("/test_x")
