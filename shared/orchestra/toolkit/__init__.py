"""What automations share: building blocks on top of the core, one module per concept.

Automations import the core (``orchestra.*``) and this toolkit, never each other; the toolkit
never imports an automation. ``make lint`` enforces both with import-linter contracts
(``[tool.importlinter]`` in ``pyproject.toml``).

- ``rows``: bounded line reading of input files and bookkeeping of malformed rows
- ``filestate``: file writes that can be undone from stored data alone
- ``dependencies``: calls to Google APIs through their circuit breakers
- ``render``: rendering helpers shared by reports
- ``process``: running a command in its own process group with a timeout
- ``suite_results``: the stored test-suite results a deployment gate reads
- ``cloudrun``: automations acting on one Cloud Run service's settings from its metrics
- ``series``: bounded (min/max-preserving) downsampled copies of metric series to store with a run

Importing this package is cheap; each module loads what it needs.
"""
