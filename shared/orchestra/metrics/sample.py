"""The bundled sample service (package data under ``orchestra/samples/performance``)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from .files import FileMetricsSource

SAMPLE_DIR = "samples/performance"


@dataclass(frozen=True)
class Sample:
    service: str
    source: FileMetricsSource
    service_yaml: Path
    instance_capacity_rps: float
    directory: Path


def sample_directory() -> Path:
    return Path(str(resources.files("orchestra").joinpath(SAMPLE_DIR)))


def load_sample() -> Sample:
    directory = sample_directory()
    manifest = yaml.safe_load((directory / "sample.yaml").read_text())
    paths = {name: str(directory / file) for name, file in manifest["metrics"].items()}
    label = (
        f"bundled sample service {manifest['service']!r} (real AWS CloudWatch series from the "
        "Numenta Anomaly Benchmark, MIT licence)"
    )
    return Sample(
        service=manifest["service"],
        source=FileMetricsSource(paths, label=label),
        service_yaml=directory / manifest["service_yaml"],
        instance_capacity_rps=float(manifest["instance_capacity_rps"]),
        directory=directory,
    )
