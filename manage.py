#!/usr/bin/env python
"""Django's command-line utility for sonoreview.

A bad configuration (ConfigurationError from the settings, an unreachable database or broker)
ends the command with one line on stderr and exit status 2 instead of a traceback. Commands that
start a long-running service also check the database and broker before they start.
"""

import os
import sys

# Commands that start a service: refuse to start when the database or broker is unreachable.
SERVICE_COMMANDS = {"runserver", "dicom_receiver"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.base")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    from webapp.core.startup import configuration_errors_exit, fail, require_services

    command = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        with configuration_errors_exit():
            from django.conf import settings

            settings.INSTALLED_APPS  # noqa: B018 - evaluates the settings: errors surface here
            # runserver's autoreloader child (RUN_MAIN) was already checked by its parent.
            if (
                command in SERVICE_COMMANDS
                and os.environ.get("RUN_MAIN") != "true"
                and os.environ.get("SONOREVIEW_SKIP_STARTUP_CHECKS") != "1"
            ):
                import django

                django.setup()
                require_services()
            execute_from_command_line(sys.argv)
    except OperationalError as exc:
        # e.g. `migrate` against a stopped server: one line, not a page of driver traceback.
        message = " ".join(str(exc).strip().splitlines()[0].split()) if str(exc) else repr(exc)
        fail(f"database error: {message} (check DATABASE_URL)")


if __name__ == "__main__":
    main()
