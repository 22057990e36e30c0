from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0008_deadlines"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="target_error",
            field=models.FloatField(default=0.02),
        ),
    ]
