"""Entry point of the installed git hooks: ``python -m orchestra.automations.workspace.hook NAME``.

``pre-commit`` stays on the light path (standard library only). ``post-merge`` loads the full
stack and runs the optimization through the runner; it reports problems but never fails, since
git has already merged.
"""

from __future__ import annotations

import sys


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
        from ...cli.workspace import post_merge

        post_merge(squash=bool(rest and rest[0] == "1"))
        return 0
    print(f"unknown hook {name!r}; accepted: pre-commit, post-merge", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
