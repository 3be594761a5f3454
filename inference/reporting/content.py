"""What a report says, as plain values (no Django): the builders' only input.

Geometry follows the project's pixel convention (x = column, y = row, pixel centres at integer
coordinates); an ellipse is ``{"type": "ellipse", cx, cy, a, b, angle}`` (semi-axes in px, angle in
radians from +x towards +y), a length ``{"type": "line", "points": [[x, y], [x, y]]}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

#: Measurement kinds the report carries, in the order a report lists them.
KINDS = ("BPD", "OFD", "HC", "AC", "FL")


def normalise_geometry(geometry: dict[str, Any]) -> dict[str, Any]:
    """The stored geometry with an explicit ``type``: the analysis app writes
    ``{"type": "ellipse", …}``, the review app's edits ``{cx, cy, a, b, angle}`` without a type,
    and lengths may come as ``{p1, p2}``. ValueError for anything else."""
    g = dict(geometry)
    if g.get("type") == "ellipse" or {"cx", "cy", "a", "b"} <= g.keys():
        g["type"] = "ellipse"
        g.setdefault("angle", 0.0)
        return g
    if "points" in g and len(g["points"]) >= 2:
        return {"type": "line", "points": [list(map(float, p)) for p in g["points"][:2]]}
    if "p1" in g and "p2" in g:
        return {"type": "line", "points": [list(map(float, g["p1"])), list(map(float, g["p2"]))]}
    raise ValueError(f"unknown measurement geometry {sorted(g)}: expected an ellipse or two points")


@dataclass(frozen=True)
class SourceFrame:
    """One frame of a stored instance: its header (no pixel data needed) and 1-based number."""

    header: Dataset
    frame_number: int = 1

    @property
    def sop_class_uid(self) -> str:
        return str(self.header.SOPClassUID)

    @property
    def sop_instance_uid(self) -> str:
        return str(self.header.SOPInstanceUID)

    @property
    def is_multiframe(self) -> bool:
        return int(self.header.get("NumberOfFrames", 1) or 1) > 1

    @property
    def referenced_frames(self) -> list[int] | None:
        """Frame numbers for an image reference: only for multi-frame images (DICOM rule)."""
        return [self.frame_number] if self.is_multiframe else None

    @property
    def key(self) -> tuple[str, int]:
        return (self.sop_instance_uid, self.frame_number)


@dataclass(frozen=True)
class Measurement:
    """One final measurement of the signed exam, with the geometry it was made with.

    ``origin``: ``"ai"`` (AI proposal accepted), ``"edited"`` (AI proposal edited by the physician)
    or ``"physician"`` (drawn by the physician). ``algorithm`` is (name, version) of the AI model
    behind an ``ai`` value. ``selected`` marks the value that fed the formulas (one per kind).
    """

    kind: str
    value_mm: float
    geometry_px: dict[str, Any]
    source: SourceFrame
    origin: str
    tracking_uid: str
    convention: str = ""
    algorithm: tuple[str, str] | None = None
    selected: bool = True
    ai_value_mm: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "geometry_px", normalise_geometry(self.geometry_px))

    @property
    def shape(self) -> str:
        return self.geometry_px["type"]


@dataclass(frozen=True)
class Coded:
    """A coded concept (scheme, value, meaning)."""

    scheme: str
    value: str
    meaning: str


@dataclass(frozen=True)
class Derived:
    """A gestational age (days), fetal weight (g) or centile (%), with its formula identity.

    ``code`` is the DICOM code of the equation/table (CID 12013/12014/12015) or None where none
    exists (the builders then use the project's private code for ``key``). ``measurement`` names
    what a centile places on its chart (``HC``, ``EFW`` …); ``used`` marks the GA the report
    adopts and the EFW it reports.
    """

    kind: str  # GA, EFW, centile
    key: str
    name: str
    value: float
    unit: str  # d, g, %
    code: Coded | None = None
    inputs: tuple[str, ...] = ()
    measurement: str = ""
    measured_value: float | None = None
    z: float | None = None
    used: bool = False
    flags: tuple[str, ...] = ()
    reference: str = ""


@dataclass(frozen=True)
class Segment:
    """A binary mask (rows, cols) on a source frame, with the structure it shows."""

    structure: str  # skull, abdomen, femur
    mask: Any  # numpy bool array
    source: SourceFrame
    algorithm: tuple[str, str] | None = None


@dataclass(frozen=True)
class QualityItem:
    view: str
    criterion: str
    verdict: str  # met, not_met, not_assessable
    decision: str = ""  # physician decision or ""
    points: int = 1


@dataclass(frozen=True)
class Amendment:
    reason: str
    by: str
    at: str
    changes: int = 0


@dataclass(frozen=True)
class ReportContent:
    """Everything one version of the signed report says."""

    header: Dataset  # any source instance header: patient / study module values come from it
    measurements: tuple[Measurement, ...]
    derived: tuple[Derived, ...]
    signer_name: str  # DICOM PN, e.g. "Doe^Jane"
    signer_login: str
    signed_at: dt.datetime
    version: int = 1
    content_hash: str = ""
    device_name: str = "sonoreview"
    device_uid: str = "2.25.1"
    software_version: str = "0.1.0"
    segments: tuple[Segment, ...] = ()
    quality: tuple[QualityItem, ...] = ()
    amendments: tuple[Amendment, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ga_used(self) -> Derived | None:
        return next((d for d in self.derived if d.kind == "GA" and d.used), None)

    @property
    def efw_used(self) -> Derived | None:
        return next((d for d in self.derived if d.kind == "EFW" and d.used), None)

    def selected(self, kind: str) -> Measurement | None:
        return next((m for m in self.measurements if m.kind == kind and m.selected), None)

    def centile(self, measurement: str) -> Derived | None:
        return next(
            (d for d in self.derived if d.kind == "centile" and d.measurement == measurement),
            None,
        )

    def sources(self) -> list[SourceFrame]:
        """Distinct source frames of the measurements, in report order."""
        seen: dict[tuple[str, int], SourceFrame] = {}
        for m in self.measurements:
            seen.setdefault(m.source.key, m.source)
        return list(seen.values())


def stable_uid(*parts: object) -> str:
    """A 2.25 UID derived from ``parts`` (same parts → same UID; 128 bits of SHA-256).

    pydicom's ``generate_uid(prefix=None, entropy_srcs=…)`` ignores the sources and returns a
    random UUID-based UID, so report objects that must keep their identity across rebuilds and
    retries get theirs here.
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:16]
    return "2.25." + str(int.from_bytes(digest, "big"))
