"""Defaults the fast pre-commit path needs without importing pydantic (see settings.py).

A test keeps these equal to the settings model defaults and to the packaged config.yaml.
"""

PRECOMMIT_MAX_KB_DEFAULT = 500  # pre-commit-hooks check-added-large-files --maxkb default
PRECOMMIT_CONFLICT_MARKERS_DEFAULT = True
