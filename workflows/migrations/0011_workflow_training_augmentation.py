from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0010_case_phash_duplicate_of"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="training_augmentation",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
