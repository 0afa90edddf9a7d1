"""The ``workspace`` automation: git repository analysis, hooks and safe optimizations.

Kept empty of imports: the pre-commit hook imports ``precommit`` from this package on every
commit, and the registry imports ``plugin`` directly.
"""
