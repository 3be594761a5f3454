"""DICOM SEG (binary) of the AI masks on the derived single-frame image of their frame.

Segment properties use SNOMED CT anatomy codes via pydicom's code dictionary where the structure
has one; the segment algorithm is AUTOMATIC with the model's name and version.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from inference.reporting.content import Segment

_STRUCTURE = {
    # structure → (label, segmented property type)
    "skull": ("Fetal skull", codes.SCT.Skull),
    "head": ("Fetal head", codes.SCT.Head),
    "abdomen": ("Fetal abdomen", codes.SCT.Abdomen),
    "femur": ("Fetal femur", codes.SCT.Femur),
}


def _description(number: int, segment: Segment) -> hd.seg.SegmentDescription:
    label, prop = _STRUCTURE.get(segment.structure, (segment.structure, codes.SCT.Tissue))
    name, version = segment.algorithm or ("sonoreview", "unknown")
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=prop,
        algorithm_type="AUTOMATIC",
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=name[:64] or "model",
            version=version[:64] or "0",
            family=codes.DCM.ArtificialIntelligence,
        ),
    )


def build_seg(
    image: Dataset,
    segments: Sequence[Segment],
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 904,
    software_version: str = "0.1.0",
) -> Dataset:
    """A binary SEG of ``segments`` (all on ``image``'s single frame), one segment each."""
    if not segments:
        raise ValueError("no mask to put in a SEG")
    rows, cols = int(image.Rows), int(image.Columns)
    stack = np.zeros((1, rows, cols, len(segments)), dtype=bool)
    for i, s in enumerate(segments):
        mask = np.asarray(s.mask, dtype=bool)
        if mask.shape != (rows, cols):
            raise ValueError(f"{s.structure} mask is {mask.shape}, the image is {(rows, cols)}")
        stack[0, :, :, i] = mask
    seg = hd.seg.Segmentation(
        source_images=[image],
        pixel_array=stack,
        segmentation_type="BINARY",
        segment_descriptions=[_description(i + 1, s) for i, s in enumerate(segments)],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=1,
        manufacturer="sonoreview",
        manufacturer_model_name="sonoreview",
        software_versions=software_version,
        device_serial_number="0",
        content_label="FETALBIOMETRY",
        content_description="AI masks of the biometry planes",
        omit_empty_frames=False,
    )
    # General Image's Patient Orientation is type 2C for an image without a frame of reference;
    # ultrasound has no patient orientation, so it is present and empty (dciodvfy checks this).
    seg.PatientOrientation = ""
    return seg
