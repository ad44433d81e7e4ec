"""Signals of the proxy for the apps above it (they connect; the proxy never imports them)."""

from django.dispatch import Signal

# Sent after a flush wrote device sessions' counters to the database (and closed some), with
# ``session_ids``: the ids of the sessions whose rows changed. Receivers run outside the flush's
# transactions; an exception in one is logged and does not fail the flush (send_robust).
sessions_flushed = Signal()
