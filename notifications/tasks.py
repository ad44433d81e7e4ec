import smtplib

from celery import Task, shared_task

from notifications import services


@shared_task(name="notifications.consume_event")
def consume_event(event_id: str) -> bool:
    """A committed event, handled once (``events.consumers``)."""
    return services.event_consume(event_id=event_id)


# SMTP refusals and a server that is down or unreachable (OSError) are worth retrying; a bad template is not.
@shared_task(
    name="notifications.send_email",
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=8,
)
def send_email(notification_id: int) -> str:
    return services.email_send(notification_id=notification_id)


class SealedArgsTask(Task):
    """Names only its first argument (an id) wherever Celery shows a task's arguments.

    Celery writes ``argsrepr`` into the message and logs it when a worker receives, finishes or fails the task;
    set here on publishing (and every retry's publishing) and before each run (eager runs too).
    """

    @staticmethod
    def argsrepr(args) -> str:
        return repr([args[0] if args else None, "<sealed>"])

    def apply_async(self, args=None, kwargs=None, **options):
        options.setdefault("argsrepr", self.argsrepr(args))
        return super().apply_async(args, kwargs, **options)

    def before_start(self, task_id, args, kwargs):
        self.request.argsrepr = self.argsrepr(args)


# The recipient's claim link, queued by access.gifts by name and retried like send_email. Only the gift id is
# ever logged: the sealed code is not, though it opens only with the server's key.
@shared_task(
    base=SealedArgsTask,
    name="notifications.send_gift_mail",
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=8,
)
def send_gift_mail(gift_id: str, sealed: str) -> str:
    return services.gift_mail_send(gift_id=gift_id, sealed=sealed)


@shared_task(name="notifications.scan")
def scan() -> dict:
    """Every minute: events whose task was lost, tokens entering a notice window, mails never sent."""
    return services.scan()
