"""HTTP handling for the ``controller`` and ``webhooks`` functions.

Plain functions over a flask ``Request`` that return ``(json_body, status, headers)`` tuples,
which functions-framework (flask) turns into responses: routing, authentication, GitHub
signature verification, body limits and the mapping of library errors to HTTP status codes.
Errors are always ``{"error": {"message": ..., "field": ...}}``.
"""
