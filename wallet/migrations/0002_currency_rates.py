"""Top-ups in several currencies: CurrencyRate, and the rate and minor-unit amount frozen on each payment.

RUB starts enabled at ZNC_TO_RUB_RATE; USD and EUR start disabled at placeholder
prices until an admin sets them. Existing payments (all RUB) get their rate back
from amount_money / amount_znc and amount_minor = amount_money × 100.
"""

from decimal import Decimal

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def rates_create(apps, schema_editor):
    CurrencyRate = apps.get_model("wallet", "CurrencyRate")
    initial = {
        "RUB": (Decimal(settings.ZNC_TO_RUB_RATE), True),
        "USD": (Decimal("0.11"), False),
        "EUR": (Decimal("0.10"), False),
    }
    for currency, (price, enabled) in initial.items():
        CurrencyRate.objects.get_or_create(currency=currency, defaults={"znc_price": price, "enabled": enabled})


def payments_fill(apps, schema_editor):
    Payment = apps.get_model("wallet", "Payment")
    # amount_znc > 0 (a constraint), so the division is safe; six places is the field's precision.
    for payment in Payment.objects.filter(rate__isnull=True).only("pk", "amount_znc", "amount_money"):
        rate = (payment.amount_money / payment.amount_znc).quantize(Decimal("0.000001"))
        Payment.objects.filter(pk=payment.pk).update(rate=rate)
    Payment.objects.filter(amount_minor__isnull=True).update(amount_minor=F("amount_money") * 100)


class Migration(migrations.Migration):
    dependencies = [
        ("wallet", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CurrencyRate",
            fields=[
                (
                    "currency",
                    models.CharField(max_length=3, primary_key=True, serialize=False, verbose_name="currency"),
                ),
                (
                    "znc_price",
                    models.DecimalField(decimal_places=6, max_digits=14, verbose_name="price of 1 ZNC"),
                ),
                ("enabled", models.BooleanField(default=False, verbose_name="enabled")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated")),
                (
                    "updated_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="updated by",
                    ),
                ),
            ],
            options={
                "verbose_name": "currency rate",
                "verbose_name_plural": "currency rates",
                "ordering": ["currency"],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("znc_price__gt", 0)), name="currency_rate_positive")
                ],
            },
        ),
        migrations.AddField(
            model_name="payment",
            name="amount_minor",
            field=models.BigIntegerField(null=True, verbose_name="amount in minor units"),
        ),
        migrations.AddField(
            model_name="payment",
            name="rate",
            field=models.DecimalField(decimal_places=6, max_digits=14, null=True, verbose_name="price of 1 ZNC"),
        ),
        migrations.RunPython(rates_create, migrations.RunPython.noop),
        migrations.RunPython(payments_fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="payment",
            name="amount_minor",
            field=models.BigIntegerField(verbose_name="amount in minor units"),
        ),
        migrations.AlterField(
            model_name="payment",
            name="rate",
            field=models.DecimalField(decimal_places=6, max_digits=14, verbose_name="price of 1 ZNC"),
        ),
        migrations.AlterField(
            model_name="payment",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("succeeded", "Succeeded"),
                    ("canceled", "Canceled"),
                    ("failed", "Failed"),
                    ("mismatch", "Amount mismatch"),
                ],
                default="pending",
                max_length=10,
                verbose_name="status",
            ),
        ),
    ]
