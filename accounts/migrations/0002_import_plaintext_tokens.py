"""Move the keys of DRF's plaintext token table into hashed ApiToken rows, then drop it.

Existing keys keep working: each becomes a token named "migrated" with the SHA-256 of
the key. The old table (which held every key in clear text) is dropped, so that no
plaintext key stays behind. On a new database there is no old table and nothing to do.
"""

import hashlib

from django.db import migrations

OLD_TABLE = "authtoken_token"


def import_plaintext_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    quoted = schema_editor.quote_name(OLD_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {quoted}")  # noqa: S608
        rows = cursor.fetchall()
    ApiToken.objects.bulk_create(
        ApiToken(
            user_id=user_id,
            name="migrated",
            key_prefix=key[:8],
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            created_at=created,
        )
        for key, user_id, created in rows
    )
    schema_editor.execute(f"DROP TABLE {quoted}")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(import_plaintext_tokens, migrations.RunPython.noop)]
