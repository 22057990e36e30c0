"""The near-copy lookup's band indexes (docs/decisions.md D143), built CONCURRENTLY on
PostgreSQL so that a live case table keeps taking cases while they build."""

import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

from kernel.migrationops import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('modelops', '0006_model_runtime_int8'),
        ('workflows', '0014_case_deadline_indexes_in_review'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(models.F('workflow'), django.db.models.functions.text.Substr('phash', 1, 4), models.F('created_at'), models.F('id'), name='case_phash_band_0'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(models.F('workflow'), django.db.models.functions.text.Substr('phash', 5, 3), models.F('created_at'), models.F('id'), name='case_phash_band_1'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(models.F('workflow'), django.db.models.functions.text.Substr('phash', 8, 3), models.F('created_at'), models.F('id'), name='case_phash_band_2'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(models.F('workflow'), django.db.models.functions.text.Substr('phash', 11, 3), models.F('created_at'), models.F('id'), name='case_phash_band_3'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(models.F('workflow'), django.db.models.functions.text.Substr('phash', 14, 3), models.F('created_at'), models.F('id'), name='case_phash_band_4'),
        ),
    ]
