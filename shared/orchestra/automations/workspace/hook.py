"""Entry point of the installed git hooks: ``python -m orchestra.automations.workspace.hook NAME``.

``pre-commit`` stays on the light path (standard library only). ``post-merge`` loads the full
stack and runs the optimization through the runner; it reports problems but never fails, since
git has already merged.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...config import Config
    from ...models import Mode, Run, TriggerKind

TASK = "workspace"


def execute(
    config: Config,
    store_url_opt: str | None,
    *,
    repo: str,
    mode: Mode,
    environment: str | None,
    automation_level: int | None,
    trigger_kind: TriggerKind,
    requested_by: str,
    full: bool = False,
    query_remotes: bool | None = None,
) -> tuple[Run, dict[str, Any]]:
    """Run the workspace automation through the runner; returns the run and before/after sizes."""
    from ...app import build_app
    from ...inputs import Origin
    from ...runner import RunRequest
    from .analysis import human_bytes

    params: dict[str, Any] = {"repo": os.path.abspath(repo)}
    if full:
        params["full"] = True
    if query_remotes is not None:
        params["query_remotes"] = query_remotes
    outcome = build_app(config=config, store_url=store_url_opt).runner.submit(
        RunRequest(
            task=TASK,
            environment=environment,
            mode=mode,
            automation_level=automation_level,
            params=params,
            trigger_kind=trigger_kind,
            requested_by=requested_by,
            origin=Origin.local,
        )
    )
    run = outcome.run
    sizes: dict[str, Any] = {}
    before = run.summary.get("size_bytes")
    if before is not None:
        after = _size_now(params["repo"])
        freed_caches = sum(
            int(a.result.get("freed_bytes", 0))
            for a in run.actions
            if a.kind == "remove-cache-dir" and a.status == "applied"
        )
        sizes = {
            "objects_before_bytes": before,
            "objects_after_bytes": after,
            "cache_dirs_freed_bytes": freed_caches,
            "summary": f"objects {human_bytes(before)} -> {human_bytes(after)}"
            + (f", caches freed {human_bytes(freed_caches)}" if freed_caches else ""),
        }
    return run, sizes


def _size_now(repo: str) -> int:
    from .objects import read_object_store
    from .repo import discover

    info, git = discover(repo)
    return read_object_store(info, git).size_bytes


def post_merge(*, squash: bool) -> None:
    """What the post-merge hook runs: optimize at the configured level, one line of output."""
    from ...app import load_config
    from ...errors import OrchestraError
    from ...models import Mode, RunStatus, TriggerKind

    del squash  # a squash merge changes nothing the optimizations look at
    try:
        config = load_config(None)
        run, sizes = execute(
            config,
            None,
            repo=".",
            mode=Mode.apply,
            environment=None,
            automation_level=None,
            trigger_kind=TriggerKind.hook,
            requested_by="hook:post-merge",
        )
    except OrchestraError as exc:
        print(f"orchestra workspace (post-merge): not run: {exc}", file=sys.stderr)
        return
    applied = [a for a in run.actions if a.status == "applied"]
    skipped = [a for a in run.actions if a.status != "applied"]
    parts = [f"{len(applied)} optimization(s) applied"]
    if skipped:
        parts.append(f"{len(skipped)} not applied ({skipped[0].reason})")
    if run.status in (RunStatus.failed, RunStatus.rolled_back):
        parts.append(f"run {run.status}: {run.reason or (run.error.message if run.error else '')}")
    if sizes:
        parts.append(sizes["summary"])
    print(f"orchestra workspace (post-merge): {'; '.join(parts)} [run {run.id}]", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m orchestra.automations.workspace.hook pre-commit|post-merge", file=sys.stderr)
        return 2
    name, rest = args[0], args[1:]
    if name == "pre-commit":
        from .precommit import main as precommit_main

        return precommit_main(rest)
    if name == "post-merge":
        post_merge(squash=bool(rest and rest[0] == "1"))
        return 0
    print(f"unknown hook {name!r}; accepted: pre-commit, post-merge", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
