from decimal import Decimal

from django.db import migrations

DEFAULT_BUNDLES = [
    ("Starter Pack", "5 tokens of 24 hours: try the service for a working week.", 5, 24, "full", "10.00", "90.00", "81.00"),
    ("Pro Bundle", "10 tokens of 24 hours for a busy workshop.", 10, 24, "full", "15.00", "180.00", "153.00"),
    ("Ultimate Package", "20 tokens of 7 days for fleets and dealers.", 20, 168, "full", "20.00", "2000.00", "1600.00"),
    (
        "Certificates Bundle",
        "10 tokens of 24 hours limited to certificate management.",
        10,
        24,
        "certificates_only",
        "15.00",
        "180.00",
        "153.00",
    ),
]


def create_bundles(apps, schema_editor):
    Bundle = apps.get_model("access", "Bundle")
    for name, description, count, hours, scope, discount, base, total in DEFAULT_BUNDLES:
        Bundle.objects.get_or_create(
            name=name,
            defaults={
                "description": description,
                "token_count": count,
                "duration_hours": hours,
                "scope": scope,
                "discount_percent": Decimal(discount),
                "base_price": Decimal(base),
                "total_price": Decimal(total),
            },
        )


def remove_bundles(apps, schema_editor):
    apps.get_model("access", "Bundle").objects.filter(name__in=[b[0] for b in DEFAULT_BUNDLES]).delete()


class Migration(migrations.Migration):
    dependencies = [("access", "0001_initial")]

    operations = [migrations.RunPython(create_bundles, remove_bundles)]
