"""The object database on disk: loose objects, packs, garbage, and whether `git gc --auto` would run.

`git gc --auto` estimates loose objects from the ``objects/17`` fan-out directory (a 1/256 sample)
and runs when that sample exceeds ``ceil(gc.auto / 256)``, or when there are more than
``gc.autoPackLimit`` packs without a ``.keep`` file. ``gc.auto = 0`` disables it. The same rules are
applied here so the report says what git itself would decide.
"""

from __future__ import annotations

import os
import string
from dataclasses import asdict, dataclass, field
from typing import Any

from .gitio import Git
from .repo import RepoInfo, parse_git_int

GC_AUTO_DEFAULT = 6700
GC_AUTO_PACK_LIMIT_DEFAULT = 50
_HEX = frozenset(string.hexdigits.lower())


@dataclass
class PackInfo:
    name: str
    size_bytes: int
    keep: bool
    promisor: bool


@dataclass
class ObjectStore:
    loose_objects: int
    loose_size_bytes: int
    packs: list[PackInfo]
    pack_size_bytes: int  # .pack + .idx + .rev + .bitmap + ..., exact bytes
    garbage_count: int
    garbage_size_bytes: int
    prune_packable: int
    sample_17: int
    gc_auto: int
    gc_auto_pack_limit: int
    alternates: list[str] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        return self.loose_size_bytes + self.pack_size_bytes + self.garbage_size_bytes

    @property
    def estimated_loose(self) -> int:
        return self.sample_17 * 256

    @property
    def gc_reasons(self) -> list[str]:
        """Why `git gc --auto` would run now (empty: it would do nothing)."""
        if self.gc_auto <= 0:
            return []
        reasons = []
        if self.gc_auto_pack_limit > 0:
            unkept = sum(1 for p in self.packs if not p.keep)
            if unkept > self.gc_auto_pack_limit:
                reasons.append(f"{unkept} packs without .keep > gc.autoPackLimit {self.gc_auto_pack_limit}")
        threshold = -(-self.gc_auto // 256)
        if self.sample_17 > threshold:
            reasons.append(
                f"~{self.estimated_loose} loose objects (objects/17 holds {self.sample_17} > "
                f"{threshold}) > gc.auto {self.gc_auto}"
            )
        return reasons

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["packs"] = sorted(data["packs"], key=lambda p: -p["size_bytes"])
        data["size_bytes"] = self.size_bytes
        data["estimated_loose"] = self.estimated_loose
        data["gc_auto_would_run"] = bool(self.gc_reasons)
        data["gc_reasons"] = self.gc_reasons
        return data


def count_objects(git: Git) -> dict[str, int]:
    """`git count-objects -v` as a dict (sizes in KiB, as git prints them)."""
    out: dict[str, int] = {}
    for line in git.text("count-objects", "-v").splitlines():
        key, _, value = line.partition(":")
        try:
            out[key.strip()] = int(value.strip())
        except ValueError:
            continue
    return out


def read_object_store(info: RepoInfo, git: Git) -> ObjectStore:
    objects = info.objects_dir
    counts = count_objects(git)
    packs: list[PackInfo] = []
    pack_bytes = 0
    pack_dir = objects / "pack"
    try:
        entries = {e.name: e for e in os.scandir(pack_dir)}
    except OSError:
        entries = {}
    for name, entry in entries.items():
        if name.startswith("pack-") and not name.endswith((".keep", ".promisor", ".mtimes.tmp")):
            try:
                size = entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
            pack_bytes += size
            if name.endswith(".pack"):
                stem = name[: -len(".pack")]
                packs.append(
                    PackInfo(
                        name=name,
                        size_bytes=size,
                        keep=f"{stem}.keep" in entries,
                        promisor=f"{stem}.promisor" in entries,
                    )
                )
    try:
        sample = sum(1 for e in os.scandir(objects / "17") if len(e.name) >= 38 and set(e.name) <= _HEX)
    except OSError:
        sample = 0
    alternates: list[str] = []
    try:
        alternates = [
            line.strip()
            for line in (objects / "info" / "alternates").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    except OSError:
        pass
    return ObjectStore(
        loose_objects=counts.get("count", 0),
        loose_size_bytes=counts.get("size", 0) * 1024,  # disk usage, as count-objects measures it
        packs=packs,
        pack_size_bytes=pack_bytes,
        garbage_count=counts.get("garbage", 0),
        garbage_size_bytes=counts.get("size-garbage", 0) * 1024,
        prune_packable=counts.get("prune-packable", 0),
        sample_17=sample,
        gc_auto=parse_git_int(info.config_value("gc.auto"), GC_AUTO_DEFAULT),
        gc_auto_pack_limit=parse_git_int(info.config_value("gc.autopacklimit"), GC_AUTO_PACK_LIMIT_DEFAULT),
        alternates=alternates,
    )
