"""DICOM and chart builders for the signed exam report, free of Django.

Each builder takes a :class:`~inference.reporting.content.ReportContent` (plain values: measurements
with their geometry and source frame, GA / EFW / centiles with their formula identity, signer) and
returns a pydicom ``Dataset`` that is valid by construction (the tests run dciodvfy and dsrdump on
every kind and check the template tree, which those tools do not):

* :mod:`~inference.reporting.tid5000` — OB-GYN Ultrasound Procedure Report (TID 5000 / 5005 / 5008)
* :mod:`~inference.reporting.tid1500` — Measurement Report (TID 1500) of the same measurements
* :mod:`~inference.reporting.images` — derived single-frame US image of a chosen frame, and the
  Secondary Capture key image with the measurement overlay burned in
* :mod:`~inference.reporting.seg` — DICOM SEG of the masks on the derived single-frame image
* :mod:`~inference.reporting.overlay` / :mod:`~inference.reporting.charts` — the pictures the PDF
  shows (overlay on the frame; INTERGROWTH-21st growth charts)
* :mod:`~inference.reporting.readback` — measurements read back from an SR (tests, verification)
"""
