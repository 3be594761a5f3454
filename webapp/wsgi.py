"""WSGI entry point: ``gunicorn --preload webapp.wsgi:application``.

Loading the application checks the configuration and that the database and broker answer; if
not, the process prints one ``sonoreview: configuration error: …`` line and exits (status 3,
which gunicorn's master reads as "failed to boot" and stops on). Use ``--preload`` so the check
runs once in the master, before any worker forks.
"""

import os
import sys

from django.core.wsgi import get_wsgi_application

from webapp.core.startup import configuration_errors_exit, require_services

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.base")

_EXIT_CODE = 3 if "gunicorn" in sys.modules else 2
with configuration_errors_exit(code=_EXIT_CODE):
    application = get_wsgi_application()
    if os.environ.get("SONOREVIEW_SKIP_STARTUP_CHECKS") != "1":
        require_services(code=_EXIT_CODE)
