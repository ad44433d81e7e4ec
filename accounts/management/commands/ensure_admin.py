import secrets

from django.core.management.base import BaseCommand

from accounts.models import User
from accounts.services import user_create


class Command(BaseCommand):
    help = "Create the first superuser, once, and print its generated password."

    def add_arguments(self, parser):
        parser.add_argument("--email", default="admin@example.com")
        parser.add_argument("--username", default="admin")

    def handle(self, *args, email, username, **options):
        if User.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        user_create(email=email, username=username, password=password, is_staff=True, is_superuser=True)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the admin account: {email} / {password}\n"
                "This password is shown only once: note it now (change it in the portal)."
            )
        )
