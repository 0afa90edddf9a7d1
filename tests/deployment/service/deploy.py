"""Deploy command used by the tests: a real deployment of a tiny static HTTP service.

Usage (as configured for the command deployer): deploy.py REVISION REF
- exports the app from the git repository at REVISION (``git show REV:app/...``);
- publishes it into the served directory: ``index.html``, and ``health`` (containing
  ``ok <revision>``) only when the revision's ``app/health.txt`` says ``ok``;
- records the ref it received, byte for byte, in ``ref.txt`` (the tests check that a hostile
  branch name arrived as data);
- starts the HTTP server (python -m http.server, detached) if it is not running.

Paths come from the environment: DEPLOY_REPO, DEPLOY_WWW, DEPLOY_PORT, DEPLOY_PIDFILE.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def git_show(repo: str, revision: str, path: str) -> str | None:
    out = subprocess.run(
        ["git", "-C", repo, "show", f"{revision}:{path}"], capture_output=True, text=True, check=False
    )
    return out.stdout if out.returncode == 0 else None


def server_alive(pidfile: Path) -> bool:
    if not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text()), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True


def wait_for_port(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"server did not start on port {port}")


def main() -> int:
    revision, ref = sys.argv[1], sys.argv[2]
    if os.environ.get("ORCHESTRA_REVISION") != revision:
        print("ORCHESTRA_REVISION does not match the revision argument", file=sys.stderr)
        return 3
    repo = os.environ["DEPLOY_REPO"]
    www = Path(os.environ["DEPLOY_WWW"])
    port = int(os.environ["DEPLOY_PORT"])
    pidfile = Path(os.environ["DEPLOY_PIDFILE"])
    index = git_show(repo, revision, "app/index.html")
    if index is None:
        print(f"revision {revision} has no app/index.html", file=sys.stderr)
        return 4
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_text(index)
    (www / "ref.txt").write_text(ref)
    (www / "env-ref.txt").write_text(os.environ.get("ORCHESTRA_REF", ""))
    with open(www.parent / "deploys.log", "a") as log:
        log.write(f"{revision}\n")
    health = (git_show(repo, revision, "app/health.txt") or "").strip()
    if health == "ok":
        (www / "health").write_text(f"ok {revision}\n")
    else:
        (www / "health").unlink(missing_ok=True)
    if not server_alive(pidfile):
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(www)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        pidfile.write_text(str(proc.pid))
        wait_for_port(port)
    print(f"deployed {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
