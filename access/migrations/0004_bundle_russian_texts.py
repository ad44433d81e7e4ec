from django.db import migrations, models

# Russian texts for the default bundles of 0002, keyed by their English name.
# Short names: the portal says "Пакет «%(name)s» куплен", and the cards sit under the heading "Пакеты".
DEFAULT_BUNDLES_RU = {
    "Starter Pack": ("Стартовый", "5 токенов по 24 часа: попробуйте сервис в течение рабочей недели."),
    "Pro Bundle": ("Профи", "10 токенов по 24 часа для загруженной мастерской."),
    "Ultimate Package": ("Максимальный", "20 токенов по 7 дней для автопарков и дилеров."),
    "Certificates Bundle": ("Сертификаты", "10 токенов по 24 часа только для работы с сертификатами."),
}


def translate_default_bundles(apps, schema_editor):
    Bundle = apps.get_model("access", "Bundle")
    for name, (name_ru, description_ru) in DEFAULT_BUNDLES_RU.items():
        # Only where an operator has not written a Russian text already.
        Bundle.objects.filter(name=name, name_ru="").update(name_ru=name_ru)
        Bundle.objects.filter(name=name, description_ru="").update(description_ru=description_ru)


class Migration(migrations.Migration):
    dependencies = [("access", "0003_accesstoken_expired_at")]

    operations = [
        migrations.AddField(
            model_name="bundle",
            name="name_ru",
            field=models.CharField(blank=True, default="", max_length=100, verbose_name="name in Russian"),
        ),
        migrations.AddField(
            model_name="bundle",
            name="description_ru",
            field=models.TextField(blank=True, default="", verbose_name="description in Russian"),
        ),
        migrations.RunPython(translate_default_bundles, migrations.RunPython.noop),
    ]
