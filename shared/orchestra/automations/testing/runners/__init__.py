"""Where suites run: the port (:mod:`.base`) and its adapters, picked per suite by ``runner``.

- ``command`` (:mod:`.command`): a local process with a timeout that kills its process group,
  JUnit XML read from the working directory;
- ``cloud-build`` (:mod:`.cloud_build`): a Cloud Build build through the REST API, polled to
  completion within the suite's timeout; the build status is the result.
"""

from __future__ import annotations

from typing import Any

from ..settings import Suite
from .base import SuiteJob, SuiteRunner

__all__ = ["SuiteJob", "SuiteRunner", "build_runner"]


def build_runner(suite: Suite, *, session: Any = None, endpoint: str | None = None) -> SuiteRunner:
    """The runner ``suite`` names. ``session`` (an ``AuthorizedSession``) and ``endpoint`` (the
    Cloud Build API root) are for callers with their own client, and tests."""
    if suite.runner == "cloud-build":
        from .cloud_build import CloudBuildRunner

        assert suite.cloud_build is not None  # the settings model guarantees it
        return CloudBuildRunner(suite.cloud_build, session=session, endpoint=endpoint)
    from .command import CommandRunner

    return CommandRunner()
