import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0009_workflow_target_error"),
    ]

    operations = [
        migrations.AddField(
            model_name="case",
            name="phash",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddField(
            model_name="case",
            name="duplicate_of",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="duplicates",
                to="workflows.case",
            ),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(fields=["workflow", "phash"], name="case_phash_by_workflow"),
        ),
    ]
