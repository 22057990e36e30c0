"""Indexes of the case list. On PostgreSQL they are built CONCURRENTLY, so adding them
to a live table of a million cases does not block case submission while they build."""

import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models

from kernel.migrationops import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('modelops', '0004_state_machine_events'),
        ('workflows', '0006_workspace_settings'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(fields=['workflow', 'created_at', 'id'], name='case_list_created'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(condition=models.Q(('decided_at__isnull', False)), fields=['workflow', 'decided_at', 'id'], name='case_list_decided'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(models.F('workflow'), django.db.models.functions.comparison.Coalesce(django.db.models.functions.comparison.NullIf(models.F('human_label'), models.Value('')), models.F('decision_label'), output_field=models.CharField()), models.F('created_at'), name='case_list_label'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(fields=['workflow', 'decision_source', 'created_at'], name='case_list_source'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(fields=['workflow', 'decision_model_version', 'created_at'], name='case_list_model_version'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(fields=['workflow', 'routed_level', 'created_at'], name='case_list_level'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='case',
            index=models.Index(fields=['workflow', 'review_reason', 'created_at'], name='case_list_reason'),
        ),
    ]
