"""Synthetic fetal ultrasound phantom: frames, cine sweeps and DICOM exams with exact truth.

For tests, demos and pre-training. Nothing measured on it is accuracy on real images.
"""

from inference.phantom.generator import Ellipse, PhantomFrame, make_frame, ramanujan_perimeter

__all__ = ["Ellipse", "PhantomFrame", "make_frame", "ramanujan_perimeter"]
