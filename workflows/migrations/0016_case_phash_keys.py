"""The near-copy lookup's indexes keyed by workflow and digits in one expression
(docs/decisions.md D150): built before the old ones go, CONCURRENTLY on PostgreSQL so
that a live case table keeps taking cases. The workflow's own index goes too: every
index that reads the table by workflow leads with it."""

import django.db.models.deletion
import django.db.models.functions.text
import workflows.models
from django.conf import settings
from django.db import migrations, models

from kernel.migrationops import AddIndexConcurrentlyOnPostgres, RemoveIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('modelops', '0006_model_runtime_int8'),
        ('workflows', '0015_case_phash_bands'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(workflows.models.PhashKey(models.F('phash')), models.F('created_at'), models.F('id'), name='case_phash_key'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(workflows.models.PhashKey(django.db.models.functions.text.Substr('phash', 1, 4)), models.F('created_at'), models.F('id'), name='case_phash_band_key_0'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(workflows.models.PhashKey(django.db.models.functions.text.Substr('phash', 5, 3)), models.F('created_at'), models.F('id'), name='case_phash_band_key_1'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(workflows.models.PhashKey(django.db.models.functions.text.Substr('phash', 8, 3)), models.F('created_at'), models.F('id'), name='case_phash_band_key_2'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(workflows.models.PhashKey(django.db.models.functions.text.Substr('phash', 11, 3)), models.F('created_at'), models.F('id'), name='case_phash_band_key_3'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(workflows.models.PhashKey(django.db.models.functions.text.Substr('phash', 14, 3)), models.F('created_at'), models.F('id'), name='case_phash_band_key_4'),
        ),
        RemoveIndexConcurrentlyOnPostgres(
            model_name='case',
            name='case_phash_by_workflow',
        ),
        RemoveIndexConcurrentlyOnPostgres(
            model_name='case',
            name='case_phash_band_0',
        ),
        RemoveIndexConcurrentlyOnPostgres(
            model_name='case',
            name='case_phash_band_1',
        ),
        RemoveIndexConcurrentlyOnPostgres(
            model_name='case',
            name='case_phash_band_2',
        ),
        RemoveIndexConcurrentlyOnPostgres(
            model_name='case',
            name='case_phash_band_3',
        ),
        RemoveIndexConcurrentlyOnPostgres(
            model_name='case',
            name='case_phash_band_4',
        ),
        migrations.AlterField(
            model_name='case',
            name='workflow',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='cases', to='workflows.workflow'),
        ),
    ]
