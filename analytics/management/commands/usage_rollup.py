"""``manage.py usage_rollup [--days N]``: rewrite the usage rollup from the ProxySession rows.

For after a fix to the rollup, or rows lost: the sessions last active in the last N days (default 30) are
rolled up again, in batches, by the same service the proxy's flush triggers. A session's earlier days keep
the split they have; a session without any rollup row gets its whole totals on the day of its last activity
(the split by day of its traffic is known only to the flushes that saw it).
"""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from analytics.services import usage_rollup
from proxy.models import ProxySession

BATCH = 500


class Command(BaseCommand):
    help = "Rewrite the daily usage rollup from the proxy's session rows of the last N days."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args, days: int, **options):
        since = timezone.now() - timedelta(days=days)
        ids = list(ProxySession.objects.filter(last_activity__gte=since).order_by("pk").values_list("pk", flat=True))
        written = 0
        for start in range(0, len(ids), BATCH):
            written += usage_rollup(session_ids=ids[start : start + BATCH])
        self.stdout.write(f"Rolled up {len(ids)} session(s) into {written} usage day row(s).")
