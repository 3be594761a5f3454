"""Read a report SR back: every numeric measurement with its code, unit and coordinates.

Walks the content tree of any SR (TID 5000 or TID 1500) with pydicom only, so a test or an audit can
check what a PACS holds without trusting the builder that wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


@dataclass
class NumRead:
    code: tuple[str, str, str]  # (scheme, value, meaning)
    value: float
    unit: tuple[str, str]  # (scheme, value)
    path: tuple[str, ...]  # concept code values of the containers above
    children: list[dict[str, Any]] = field(default_factory=list)


def _code(seq: Any) -> tuple[str, str, str]:
    item = seq[0]
    return (str(item.CodingSchemeDesignator), str(item.CodeValue), str(item.CodeMeaning))


def _frames(ref: Dataset) -> list[int]:
    if "ReferencedFrameNumber" not in ref:
        return []
    value = ref.ReferencedFrameNumber
    return [int(v) for v in value] if isinstance(value, MultiValue) else [int(value)]


def _child_summary(item: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {
        "relationship": str(item.RelationshipType),
        "type": str(item.ValueType),
        "name": _code(item.ConceptNameCodeSequence) if "ConceptNameCodeSequence" in item else None,
    }
    if item.ValueType == "CODE":
        out["value"] = _code(item.ConceptCodeSequence)
    elif item.ValueType == "SCOORD":
        out["graphic_type"] = str(item.GraphicType)
        out["graphic_data"] = [float(v) for v in item.GraphicData]
        refs = []
        for child in item.get("ContentSequence", []):
            if child.ValueType == "IMAGE":
                ref = child.ReferencedSOPSequence[0]
                refs.append(
                    {
                        "sop_instance_uid": str(ref.ReferencedSOPInstanceUID),
                        "frames": _frames(ref),
                    }
                )
        out["images"] = refs
    return out


def _walk(items: Any, path: tuple[str, ...], out: list[NumRead]) -> None:
    for item in items or []:
        vt = str(item.ValueType)
        name = _code(item.ConceptNameCodeSequence) if "ConceptNameCodeSequence" in item else None
        if vt == "NUM":
            mv = item.MeasuredValueSequence[0]
            unit = mv.MeasurementUnitsCodeSequence[0]
            out.append(
                NumRead(
                    code=name,  # type: ignore[arg-type]
                    value=float(mv.NumericValue),
                    unit=(str(unit.CodingSchemeDesignator), str(unit.CodeValue)),
                    path=path,
                    children=[_child_summary(c) for c in item.get("ContentSequence", [])],
                )
            )
        elif vt == "CONTAINER":
            _walk(item.get("ContentSequence", []), (*path, name[1] if name else ""), out)
        elif vt == "SCOORD" and "ContentSequence" in item:
            continue


def numeric_items(ds: Dataset) -> list[NumRead]:
    """Every NUM content item of the document, with the container path it sits in."""
    root = _code(ds.ConceptNameCodeSequence)[1]
    out: list[NumRead] = []
    _walk(ds.get("ContentSequence", []), (root,), out)
    return out


def region_scoords(ds: Dataset) -> list[dict[str, Any]]:
    """SCOORD items that are siblings of measurements (TID 1410 image regions)."""
    found: list[dict[str, Any]] = []

    def walk(items: Any) -> None:
        for item in items or []:
            if item.ValueType == "SCOORD":
                found.append(_child_summary(item))
            walk(item.get("ContentSequence", []))

    walk(ds.get("ContentSequence", []))
    return found
