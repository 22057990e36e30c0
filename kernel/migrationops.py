"""Migration operations shared by the apps' migrations."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _index_apply(schema_editor: Any, model: Any, index: Any, *, add: bool) -> None:
    """Build or drop ``index``: CONCURRENTLY on PostgreSQL, so that writes go on."""
    extra = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    (schema_editor.add_index if add else schema_editor.remove_index)(model, index, **extra)


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    """AddIndex, built without locking out writes on PostgreSQL (plain elsewhere)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            _index_apply(schema_editor, model, self.index, add=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            _index_apply(schema_editor, model, self.index, add=False)


class RemoveIndexConcurrentlyOnPostgres(migrations.RemoveIndex):
    """RemoveIndex, dropped without locking out writes on PostgreSQL (plain elsewhere)."""

    def _apply(self, app_label, schema_editor, state, *, add: bool) -> None:  # type: ignore[no-untyped-def]
        model = state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            _index_apply(schema_editor, model, index, add=add)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        self._apply(app_label, schema_editor, from_state, add=False)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        self._apply(app_label, schema_editor, to_state, add=True)
