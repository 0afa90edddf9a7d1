"""The operator console: a server-rendered web frame over the store (runs, approvals,
deployments, breakers, dead letters) and the plugins' own run views.

This package's ``__init__`` imports nothing: plugins import :mod:`orchestra.console.views` to
describe their charts without loading the web server.
"""
