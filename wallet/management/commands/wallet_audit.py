from django.core.management.base import BaseCommand, CommandError

from wallet.selectors import ledger_problems


class Command(BaseCommand):
    help = "Check every user's ledger: balance == sum of amounts, balance_after continuous, nothing negative."

    def handle(self, *args, **options):
        problems, users = ledger_problems()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} ledger problem(s) in {users} user(s)")
        self.stdout.write(self.style.SUCCESS(f"Ledger consistent for {users} user(s)."))
