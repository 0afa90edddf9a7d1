"""Settings (config file ``automations.workspace.settings``) and parameters (trigger) models.

Defaults follow the references: GitHub's repository guidance (1 GB ideally, files > 50 MB warn,
> 100 MB rejected), pre-commit-hooks' ``check-added-large-files`` (500 KB of staged content),
git-sizer's one-star levels (10 MB blob, path depth 10, 2.5 k tree entries, 50 k checkout files).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...inputs import InputDir
from ...models import Severity
from .settings_defaults import PRECOMMIT_CONFLICT_MARKERS_DEFAULT, PRECOMMIT_MAX_KB_DEFAULT

DEFAULT_PROTECTED_BRANCHES = [
    "main",
    "master",
    "develop",
    "development",
    "trunk",
    "staging",
    "production",
    "release/*",
    "release-*",
    "hotfix/*",
]
# Paths that should be ignored, not committed: dependency trees, build outputs, caches, OS debris.
# "name/" matches a directory at any depth, "*.ext" and plain names match file names.
DEFAULT_COMMITTED_JUNK = [
    "node_modules/",
    "__pycache__/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".tox/",
    ".venv/",
    "venv/",
    ".gradle/",
    ".next/",
    "build/",
    "dist/",
    "*.pyc",
    "*.pyo",
    "*.o",
    "*.obj",
    "*.class",
    "*.log",
    "*.swp",
    ".DS_Store",
    "Thumbs.db",
]
# Ignored directories that `optimize` may delete: regenerated automatically by their tools.
DEFAULT_CACHE_DIRS = [
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".parcel-cache",
    "node_modules/.cache",
    ".next/cache",
]
DEFAULT_BINARY_EXTENSIONS = [
    ".7z", ".a", ".apk", ".avi", ".bin", ".bmp", ".bz2", ".dat", ".db", ".dll", ".dmg", ".doc",
    ".docx", ".dylib", ".ear", ".exe", ".flac", ".gif", ".gz", ".h5", ".ico", ".iso", ".jar",
    ".jpeg", ".jpg", ".lib", ".mov", ".mp3", ".mp4", ".npy", ".npz", ".onnx", ".otf", ".parquet",
    ".pdf", ".pkl", ".png", ".ppt", ".pptx", ".psd", ".pt", ".rar", ".so", ".sqlite", ".tar",
    ".tgz", ".tif", ".tiff", ".ttf", ".war", ".wav", ".webm", ".webp", ".woff", ".woff2", ".xls",
    ".xlsx", ".xz", ".zip", ".zst",
]  # fmt: skip


# Upper bounds: far above any real repository, low enough that no arithmetic on them overflows.
MAX_BYTES = 10**13  # 10 TB
BlobSize = Annotated[int, Field(gt=0, le=MAX_BYTES)]


SECRET_VERSION_PATTERN = r"^projects/[A-Za-z0-9._:-]+/secrets/[A-Za-z0-9_-]{1,255}/versions/(latest|[0-9]+)$"
_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/+-]{1,255}(?<![./])$")
_LOOPBACK_NAMES = {"localhost"}


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RepositorySource(BaseModel):
    """A repository the scheduled run clones (partially, into a temporary directory removed
    afterwards) when no working copy is at hand: in the cloud, a function has none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="https:// clone URL, without credentials (file:// for a local mirror; http:// only to this machine)",
    )
    token_secret: str | None = Field(
        None,
        pattern=SECRET_VERSION_PATTERN,
        description="Secret Manager version holding an access token (projects/P/secrets/S/versions/latest)",
    )
    branch: str | None = Field(None, description="branch checked out; default: the remote's HEAD")
    clone_timeout_seconds: float = Field(300, gt=0, le=3600, description="the whole clone (seconds, <= 1 h)")

    @field_validator("url")
    @classmethod
    def _clone_url(cls, value: str) -> str:
        # The URL is never repeated in these messages: a mistyped one may hold a credential.
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("the URL has spaces or control characters")
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
        except ValueError:
            raise ValueError("not a URL; expected https://HOST/OWNER/REPO.git") from None
        if parts.scheme not in ("https", "http", "file"):
            raise ValueError(
                "accepted schemes: https:// (file:// for a local mirror, http:// to this machine)"
            )
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "credentials do not belong in the URL; put a token in Secret Manager and set token_secret"
            )
        if parts.query or parts.fragment:
            raise ValueError("the URL has a query or fragment; expected https://HOST/OWNER/REPO.git")
        if parts.scheme == "file":
            if host or not parts.path.startswith("/"):
                raise ValueError("a file:// URL names an absolute local path (file:///srv/mirror/repo.git)")
        elif not host:
            raise ValueError("the URL names no host; expected https://HOST/OWNER/REPO.git")
        elif parts.scheme == "http" and not _loopback(host):
            raise ValueError("http:// sends the token in clear: use https:// (http:// only to this machine)")
        return value

    @field_validator("branch")
    @classmethod
    def _branch_name(cls, value: str | None) -> str | None:
        if value is not None and not _BRANCH.match(value):
            raise ValueError(
                "not a branch name git accepts (letters, digits, . _ / + -; no leading '-', no '..')"
            )
        return value

    @model_validator(mode="after")
    def _token_over_http(self) -> RepositorySource:
        if self.token_secret is not None and self.scheme == "file":
            raise ValueError(
                "token_secret: a file:// URL takes no token; remove token_secret or use https://"
            )
        return self

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme


class WorkspaceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    size_limit_bytes: int = Field(
        1_000_000_000,
        gt=0,
        le=MAX_BYTES,
        description="repository size limit (objects on disk, <= 10 TB); GitHub: ideally < 1 GB",
    )
    size_trigger_ratio: float = Field(
        0.8, gt=0, le=1, description="at this share of the limit a size optimization is triggered"
    )
    largest_count: int = Field(20, ge=1, le=1000, description="entries in each 'largest' list")
    blob_severity_bytes: dict[Severity, BlobSize] = Field(
        default_factory=lambda: {
            Severity.low: 1_000_000,
            Severity.medium: 10_000_000,
            Severity.high: 50_000_000,
            Severity.critical: 100_000_000,
        },
        description="a blob at least this big (uncompressed) is a finding of that severity",
    )
    lfs_min_bytes: int = Field(
        1_000_000, gt=0, le=MAX_BYTES, description="binary files in HEAD this big belong in Git LFS"
    )
    binary_extensions: list[str] = Field(default_factory=lambda: list(DEFAULT_BINARY_EXTENSIONS))
    checkout_files_warn: int = Field(
        50_000, gt=0, le=10**9, description="git-sizer: checkout files (one star)"
    )
    path_depth_warn: int = Field(10, gt=0, le=4096, description="git-sizer: maximum path depth (one star)")
    tree_entries_warn: int = Field(2_500, gt=0, le=10**9, description="git-sizer: entries in one directory")
    committed_junk_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_COMMITTED_JUNK))
    cache_dir_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_CACHE_DIRS))
    protected_branches: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PROTECTED_BRANCHES),
        description="branch names/globs never deleted (plus the default and the current branch)",
    )
    default_branch: str | None = Field(
        None, description="default branch; None = origin/HEAD, init.defaultBranch, main or master"
    )
    query_remotes: bool = Field(
        False, description="ask remotes (network) which remote-tracking refs are stale"
    )
    remote_timeout_seconds: float = Field(20, gt=0, le=3600, description="per remote asked (seconds, <= 1 h)")
    history_cache: bool = Field(
        True,
        description="keep history aggregates in $GIT_COMMON_DIR/orchestra/ and update them incrementally",
    )
    maintenance_command: Literal["maintenance", "gc"] = Field(
        "maintenance", description="gc-auto action runs `git maintenance run --auto` or `git gc --auto`"
    )
    precommit_max_kb: int = Field(
        PRECOMMIT_MAX_KB_DEFAULT,
        gt=0,
        le=MAX_BYTES // 1024,
        description="pre-commit: staged files above this many KiB are blocked",
    )
    precommit_conflict_markers: bool = Field(
        PRECOMMIT_CONFLICT_MARKERS_DEFAULT, description="pre-commit: block staged merge-conflict markers"
    )
    source: RepositorySource | None = Field(
        None,
        description="a repository to clone for runs that name none (the cloud's scheduled run); "
        "without it, runs analyze --repo (default: the working directory)",
    )

    @field_validator("blob_severity_bytes")
    @classmethod
    def _ordered(cls, value: dict[Severity, int]) -> dict[Severity, int]:
        order = list(Severity)
        sizes = [value[s] for s in sorted(value, key=order.index)]
        if any(size <= 0 for size in sizes):
            raise ValueError("sizes must be positive")
        if sizes != sorted(sizes):
            raise ValueError("sizes must grow with severity (low < medium < high < critical)")
        return value

    @field_validator("binary_extensions")
    @classmethod
    def _dotted(cls, value: list[str]) -> list[str]:
        bad = [ext for ext in value if not ext.startswith(".") or "/" in ext]
        if bad:
            raise ValueError(f"extensions start with a dot, e.g. '.zip'; got {bad}")
        return [ext.lower() for ext in value]


class WorkspaceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: InputDir = Field(".", description="repository path (work tree or bare)")
    full: bool = Field(
        False, description="full optimization and a fresh history walk (the weekly scheduled run)"
    )
    query_remotes: bool | None = Field(None, description="override settings.query_remotes")
