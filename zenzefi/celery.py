import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenzefi.settings")

app = Celery("zenzefi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The project package is not an installed app: name its tasks module explicitly.
app.conf.imports = ("zenzefi.tasks",)


@signals.task_postrun.connect
def _count_task_run(sender=None, state=None, **kwargs):
    from zenzefi.metrics import BEAT_TASKS

    BEAT_TASKS.labels(getattr(sender, "name", "unknown"), "success" if state == "SUCCESS" else "failure").inc()
