"""`orchestra` with the controller-test automations registered, for subprocess tests.

Usage: python -m tests.continuous.controller_proc controller --mode continuous ...
(ORCHESTRA_TEST_WORKDIR names the directory the automations record their calls in).
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestra.cli.main import main
from orchestra.registry import registry

from tests.continuous.automations import WORKDIR_ENV, build_registry

if __name__ == "__main__":
    test_registry = build_registry(Path(os.environ[WORKDIR_ENV]))
    for name in test_registry.names():
        cls = test_registry.get_class(name)
        assert cls is not None
        registry.register(cls)
    main()
