"""Shared page set-up: the base layout, static files, languages (templating.py, i18n.py)."""
