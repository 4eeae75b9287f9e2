"""`python manage.py create_demo_user`: a login to look at the dashboard, for development only.

The password is generated and printed once, when the user is created; it is never a fixed
password and the command refuses to run without DEBUG, so a server never gets a demo login.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.crypto import get_random_string

from dashboard.access import VIEWERS_GROUP

DEFAULT_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create a dashboard viewer with a generated password, printed once (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=DEFAULT_USERNAME)

    def handle(self, *args, username: str, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "create_demo_user runs only with DEBUG on (config.settings.local): a login "
                "whose password was printed on a terminal has no place on a server. "
                "Use `manage.py createsuperuser` there."
            )
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            self.stdout.write(
                f"Log in as {username} with the password printed when it was created "
                f'(forgotten? make manage ARGS="changepassword {username}").'
            )
            return
        viewers = Group.objects.filter(name=VIEWERS_GROUP).first()
        if viewers is None:
            raise CommandError(
                f'The "{VIEWERS_GROUP}" group does not exist: run `manage.py migrate` first '
                "(a dashboard migration creates it)."
            )
        password = get_random_string(16)  # secrets.choice underneath
        with transaction.atomic():
            # A viewer, not staff: `createsuperuser` makes an admin.
            user = users.objects.create_user(username, password=password)
            user.groups.add(viewers)
        self.stdout.write(
            f"Log in as {username}, password: {password} (shown only this once; "
            f'change it with: make manage ARGS="changepassword {username}")'
        )
