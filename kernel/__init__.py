"""The shared kernel below the apps: domain errors and their one HTTP mapping, the
request parsers and strict JSON, bounds and pagination, and the API's error schema.

It imports no app. ``strictjson`` imports no Django at all.
"""
