from django.conf import settings
from django.db import migrations


def create_policy(apps, schema_editor):
    BackorderPolicy = apps.get_model("backorders", "BackorderPolicy")
    BackorderPolicy.objects.get_or_create(
        pk=1,
        defaults={
            "fill_strategy": settings.BACKORDER_FILL_STRATEGY,
            "handling_days": settings.BACKORDER_HANDLING_DAYS,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("backorders", "0002_alter_backorder_options_backorderpolicy_etachange")]

    operations = [migrations.RunPython(create_policy, migrations.RunPython.noop)]
