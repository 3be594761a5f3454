"""Property test: mutated real US files never cause an unexplained error or a half-saved exam.

Hypothesis feeds 300 mutations of real files (truncation, flipped bytes, corrupted
values of the tags ingest relies on, bogus pixel-data lengths) through the ingest service. Each
must come back stored, already received, or rejected with a reason; afterwards every stored
instance has its file and all its frame rows, every file has its row, every exam has images,
and no temporary file is left.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count, F
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.webapp.exams.conftest import us_file
from webapp.exams import dicomweb, services
from webapp.exams.dicomio import DicomProblem
from webapp.exams.models import Instance, Series, Study

# Small real files covering RLE, JPEG 2000, JPEG baseline cine and native palette colour.
SOURCES = ["OBXXXX1A_rle_2frame.dcm", "US1_J2KI.dcm", "examples_ybr_color.dcm", "OBXXXX1A.dcm"]
# Tags whose values ingest depends on, as they appear (little endian) in the files.
TAGS = {
    "Rows": b"\x28\x00\x10\x00",
    "Columns": b"\x28\x00\x11\x00",
    "NumberOfFrames": b"\x28\x00\x08\x00",
    "BitsAllocated": b"\x28\x00\x00\x01",
    "SamplesPerPixel": b"\x28\x00\x02\x00",
    "TransferSyntaxUID": b"\x02\x00\x10\x00",
    "SOPInstanceUID": b"\x08\x00\x18\x00",
    "PixelData": b"\xe0\x7f\x10\x00",
    "UltrasoundRegions": b"\x18\x00\x11\x60",
}
_cache: dict[str, bytes] = {}


def original(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = us_file(name).read_bytes()
    return _cache[name]


def corrupt_tag(data: bytes, tag: bytes, value: bytes) -> bytes:
    """Overwrite the value (or, for long-form VRs, the length) of the first ``tag`` element."""
    at = data.find(tag, 132)
    if at < 0:
        return data
    vr = data[at + 4 : at + 6]
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        start, size = at + 8, 4  # the 32-bit length field
    elif vr.isalpha():
        start, size = at + 8, struct.unpack("<H", data[at + 6 : at + 8])[0]
    else:  # implicit VR: 32-bit length then value
        start, size = at + 8, struct.unpack("<I", data[at + 4 : at + 8])[0]
    size = max(1, min(size, 8))
    patch = (value * size)[:size]
    return data[:start] + patch + data[start + size :]


mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(
        st.just("flip"),
        st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=16),
    ),
    st.tuples(st.just("tag"), st.sampled_from(sorted(TAGS)), st.binary(min_size=1, max_size=4)),
    st.tuples(
        st.just("header_flip"),
        st.lists(st.tuples(st.integers(128, 2047), st.integers(0, 255)), min_size=1, max_size=4),
    ),
)


def mutate(data: bytes, how: tuple) -> bytes:
    kind = how[0]
    if kind == "truncate":
        return data[: int(len(data) * how[1])]
    if kind == "tag":
        return corrupt_tag(data, TAGS[how[1]], how[2])
    buffer = bytearray(data)
    for position, value in how[1]:
        index = (
            int(position * (len(buffer) - 1))
            if isinstance(position, float)
            else min(position, len(buffer) - 1)
        )
        buffer[index] = value
    return bytes(buffer)


def _empty_archive() -> None:
    # One round trip instead of the ORM's cascade collection over every related model (the
    # analysis and review tables stay empty here: nothing commits, so nothing is analysed).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM exams_frame; DELETE FROM exams_ultrasoundregion; "
            "DELETE FROM exams_calibration; DELETE FROM exams_ingestevent; "
            "DELETE FROM exams_instance; DELETE FROM exams_series; DELETE FROM exams_study; "
            "DELETE FROM exams_patient;"
        )


def check_no_partial_state() -> None:
    media = Path(settings.MEDIA_ROOT)
    on_disk = {str(p.relative_to(media)) for p in (media / "dicom").rglob("*.dcm")}
    rows = set(Instance.objects.values_list("file", flat=True))
    assert on_disk == rows
    short = Instance.objects.annotate(n=Count("frames")).exclude(n=F("number_of_frames"))
    assert not short.exists()
    assert not Study.objects.filter(series__isnull=True).exists()
    assert not Series.objects.filter(instances__isnull=True).exists()
    assert not list((media / "incoming").glob("*.part"))


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same few hundred cases on every run (CI stays deterministic)
    database=None,  # nothing written to .hypothesis/
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(SOURCES), how=mutation)
def test_mutated_files_are_stored_or_rejected_with_reason(
    name: str, how: tuple, media_files
) -> None:
    # Each case starts from an empty archive, so a mutation that passes the checks is stored
    # (not merely "already received") and the storing path is exercised too.
    _empty_archive()
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "dicom", ignore_errors=True)
    data = mutate(original(name), how)
    result = services.ingest_file(source=data, file_name=f"fuzz-{name}", route="upload")
    assert result.outcome in ("stored", "duplicate", "rejected")
    if result.outcome == "rejected":
        assert result.reason and not result.reason.startswith("Traceback")
    else:
        instance = Instance.objects.get(sop_instance_uid=result.sop_instance_uid)
        assert instance.number_of_frames >= 1
        # What was stored can be served: metadata, and frame 1 rendered or refused with a
        # reason (DicomProblem → 422 in the views), never an unexplained exception.
        assert dicomweb.instance_metadata(instance, base_url="x")["7FE00010"]["BulkDataURI"] == "x"
        if how[0] in ("flip", "header_flip"):  # flipped bytes may land in pixels or LUTs
            try:
                dicomweb.rendered_frame(instance, 1, size=64, image_format="png")
            except DicomProblem as exc:
                assert str(exc)
    check_no_partial_state()
