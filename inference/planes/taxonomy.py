"""Standard-plane taxonomy as data: classifier classes, clinical names, SonoNet views, protocols.

One place for every plane name the project uses. The classifier's six output classes are those of
FETAL_PLANES_DB (Burgos-Artizzu et al., Sci Rep 2020) with its brain sub-planes; each maps to the
clinical name the review page shows, to the SonoNet views (Baumgartner et al., IEEE TMI 2017) it
covers, and to the biometry measurements it supports. Keys are stable identifiers (stored in the
database, weights and reports); names are what data sets and people write.

Growing the taxonomy: add a ``View`` (e.g. a SonoNet view the classifier cannot yet recognise) with
``classifier_label=None``; protocols may require it, and the review page then asks a person for it.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownPlaneError(ValueError):
    """A class name that is not in the taxonomy (the message names it and the valid spellings)."""


@dataclass(frozen=True)
class Plane:
    """One of the classifier's six plane classes (FETAL_PLANES_DB ``Plane`` column)."""

    key: str
    fpdb_name: str
    display_name: str


@dataclass(frozen=True)
class BrainPlane:
    """One of the classifier's brain sub-plane classes (FETAL_PLANES_DB ``Brain_plane`` column)."""

    key: str
    fpdb_name: str
    display_name: str
    sononet_name: str | None


@dataclass(frozen=True)
class SonoNetView:
    """One of SonoNet's 13 standard views plus background, mapped onto the six classes."""

    name: str
    plane_key: str
    brain_plane_key: str | None = None


@dataclass(frozen=True)
class View:
    """A view a protocol can require: what the review page lists and the best-frame search fills.

    ``classifier_label`` is the (plane key, brain sub-plane key or None) the shipped classifier
    recognises this view as, or None when no model recognises it yet (a person marks it).
    ``measurements`` are the biometry measurements made on this view.
    """

    key: str
    display_name: str
    classifier_label: tuple[str, str | None] | None
    measurements: tuple[str, ...] = ()
    sononet_names: tuple[str, ...] = ()


# Order = classifier output order; never reorder (weights depend on it), only append.
PLANES: tuple[Plane, ...] = (
    Plane("fetal_abdomen", "Fetal abdomen", "Fetal abdomen (transverse)"),
    Plane("fetal_brain", "Fetal brain", "Fetal head (axial brain plane)"),
    Plane("fetal_femur", "Fetal femur", "Fetal femur"),
    Plane("fetal_thorax", "Fetal thorax", "Fetal thorax (heart)"),
    Plane("maternal_cervix", "Maternal cervix", "Maternal cervix"),
    Plane("other", "Other", "Other / non-standard view"),
)

BRAIN_PLANES: tuple[BrainPlane, ...] = (
    BrainPlane("trans_thalamic", "Trans-thalamic", "Head, trans-thalamic plane", None),
    BrainPlane(
        "trans_cerebellar", "Trans-cerebellum", "Head, trans-cerebellar plane", "Brain (Cb.)"
    ),
    BrainPlane(
        "trans_ventricular", "Trans-ventricular", "Head, trans-ventricular plane", "Brain (Tv.)"
    ),
    BrainPlane("other_brain", "Other", "Head, other brain plane", None),
)

# FETAL_PLANES_DB writes "Not A Brain" in Brain_plane for every non-brain image.
NOT_A_BRAIN = "Not A Brain"

SONONET_VIEWS: tuple[SonoNetView, ...] = (
    SonoNetView("3VT", "fetal_thorax"),
    SonoNetView("4CH", "fetal_thorax"),
    SonoNetView("LVOT", "fetal_thorax"),
    SonoNetView("RVOT", "fetal_thorax"),
    SonoNetView("Abdominal", "fetal_abdomen"),
    SonoNetView("Kidneys", "other"),
    SonoNetView("Femur", "fetal_femur"),
    SonoNetView("Lips", "other"),
    SonoNetView("Profile", "other"),
    SonoNetView("Brain (Tv.)", "fetal_brain", "trans_ventricular"),
    SonoNetView("Brain (Cb.)", "fetal_brain", "trans_cerebellar"),
    SonoNetView("Spine (cor.)", "other"),
    SonoNetView("Spine (sag.)", "other"),
    SonoNetView("Background", "other"),
)

VIEWS: tuple[View, ...] = (
    View(
        "head_trans_thalamic",
        "Head: trans-thalamic plane (HC, BPD, OFD)",
        ("fetal_brain", "trans_thalamic"),
        ("HC", "BPD", "OFD"),
    ),
    View(
        "head_trans_ventricular",
        "Head: trans-ventricular plane",
        ("fetal_brain", "trans_ventricular"),
        (),
        ("Brain (Tv.)",),
    ),
    View(
        "head_trans_cerebellar",
        "Head: trans-cerebellar plane",
        ("fetal_brain", "trans_cerebellar"),
        (),
        ("Brain (Cb.)",),
    ),
    View(
        "abdomen_ac",
        "Abdomen: transverse plane at stomach and umbilical vein (AC)",
        ("fetal_abdomen", None),
        ("AC",),
        ("Abdominal",),
    ),
    View("femur_fl", "Femur: long axis (FL)", ("fetal_femur", None), ("FL",), ("Femur",)),
    View(
        "thorax_four_chamber",
        "Thorax: four-chamber view of the heart",
        ("fetal_thorax", None),
        (),
        ("4CH",),
    ),
    View("maternal_cervix", "Maternal cervix", ("maternal_cervix", None)),
    # SonoNet views the shipped classifier does not separate yet (they fall in "Other" or "Thorax").
    View("heart_lvot", "Heart: left ventricular outflow tract", None, (), ("LVOT",)),
    View("heart_rvot", "Heart: right ventricular outflow tract", None, (), ("RVOT",)),
    View("heart_3vt", "Heart: three-vessel and trachea view", None, (), ("3VT",)),
    View("kidneys", "Kidneys", None, (), ("Kidneys",)),
    View("face_lips", "Face: upper lip and nose (coronal)", None, (), ("Lips",)),
    View("face_profile", "Face: mid-sagittal profile", None, (), ("Profile",)),
    View("spine_sagittal", "Spine: sagittal", None, (), ("Spine (sag.)",)),
    View("spine_coronal", "Spine: coronal", None, (), ("Spine (cor.)",)),
)

# Protocols: the views an exam of that kind must contain. The mid-trimester list follows the
# ISUOG 2022 minimum as summarised in the project's references (anchors.md 4(d)), restricted to
# the views SonoNet names plus the trans-thalamic biometry plane.
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "biometry": ("head_trans_thalamic", "abdomen_ac", "femur_fl"),
    "mid_trimester": (
        "head_trans_thalamic",
        "head_trans_ventricular",
        "head_trans_cerebellar",
        "face_lips",
        "face_profile",
        "thorax_four_chamber",
        "heart_lvot",
        "heart_rvot",
        "heart_3vt",
        "abdomen_ac",
        "kidneys",
        "spine_sagittal",
        "femur_fl",
    ),
}

PLANE_KEYS: tuple[str, ...] = tuple(p.key for p in PLANES)
BRAIN_PLANE_KEYS: tuple[str, ...] = tuple(b.key for b in BRAIN_PLANES)
_PLANE_BY_KEY = {p.key: p for p in PLANES}
_BRAIN_BY_KEY = {b.key: b for b in BRAIN_PLANES}
_VIEW_BY_KEY = {v.key: v for v in VIEWS}


def _norm(name: str) -> str:
    # Tolerate case and stray whitespace (the FETAL_PLANES_DB table carries trailing spaces).
    return " ".join(str(name).split()).casefold()


_PLANE_BY_NAME = {_norm(p.fpdb_name): p for p in PLANES} | {_norm(p.key): p for p in PLANES}
_BRAIN_BY_NAME = {_norm(b.fpdb_name): b for b in BRAIN_PLANES} | {
    _norm(b.key): b for b in BRAIN_PLANES
}
# Common spelling variants in public copies of the data set.
_BRAIN_BY_NAME[_norm("Trans-cerebellar")] = _BRAIN_BY_KEY["trans_cerebellar"]


def plane(name: str) -> Plane:
    """The plane class for a FETAL_PLANES_DB name (``"Fetal brain"``) or a key (``"fetal_brain"``).

    Raises UnknownPlaneError naming ``name`` and the valid spellings.
    """
    found = _PLANE_BY_NAME.get(_norm(name))
    if found is None:
        valid = ", ".join(repr(p.fpdb_name) for p in PLANES)
        raise UnknownPlaneError(f"unknown plane class {name!r}; expected one of {valid}")
    return found


def brain_plane(name: str | None) -> BrainPlane | None:
    """The brain sub-plane for a FETAL_PLANES_DB name, or None for ``"Not A Brain"`` / empty.

    Raises UnknownPlaneError naming ``name`` and the valid spellings.
    """
    if name is None or _norm(name) in {"", _norm(NOT_A_BRAIN)}:
        return None
    found = _BRAIN_BY_NAME.get(_norm(name))
    if found is None:
        valid = ", ".join(repr(b.fpdb_name) for b in BRAIN_PLANES)
        raise UnknownPlaneError(
            f"unknown brain plane {name!r}; expected one of {valid} or {NOT_A_BRAIN!r}"
        )
    return found


def plane_index(name: str) -> int:
    """Classifier output index of a plane name or key."""
    return PLANE_KEYS.index(plane(name).key)


def brain_plane_index(name: str | None) -> int | None:
    """Classifier sub-plane output index of a brain-plane name, or None for non-brain/unlabelled."""
    found = brain_plane(name)
    return None if found is None else BRAIN_PLANE_KEYS.index(found.key)


def view(key: str) -> View:
    """The view with this key; UnknownPlaneError names it otherwise."""
    if key not in _VIEW_BY_KEY:
        raise UnknownPlaneError(f"unknown view {key!r}; expected one of {', '.join(_VIEW_BY_KEY)}")
    return _VIEW_BY_KEY[key]


def view_for_label(plane_key: str, brain_plane_key: str | None) -> View | None:
    """The view a classifier label stands for (brain images need their sub-plane), or None."""
    for v in VIEWS:
        if v.classifier_label is None:
            continue
        p, b = v.classifier_label
        if p == plane_key and (b is None or b == brain_plane_key):
            return v
    return None


def measurements_for(plane_key: str, brain_plane_key: str | None = None) -> tuple[str, ...]:
    """Biometry measurements a frame of this label supports (HC/BPD/OFD only on trans-thalamic)."""
    found = view_for_label(plane(plane_key).key, brain_plane_key)
    return () if found is None else found.measurements


def sononet_view(name: str) -> SonoNetView:
    """SonoNet view by its name (``"4CH"``, ``"Brain (Tv.)"``…); UnknownPlaneError otherwise."""
    for v in SONONET_VIEWS:
        if _norm(v.name) == _norm(name):
            return v
    valid = ", ".join(repr(v.name) for v in SONONET_VIEWS)
    raise UnknownPlaneError(f"unknown SonoNet view {name!r}; expected one of {valid}")


def protocol(name: str) -> tuple[View, ...]:
    """The views a protocol requires, in the order the review page lists them."""
    if name not in PROTOCOLS:
        raise UnknownPlaneError(
            f"unknown protocol {name!r}; expected one of {', '.join(PROTOCOLS)}"
        )
    return tuple(view(k) for k in PROTOCOLS[name])


def display_name(plane_key: str, brain_plane_key: str | None = None) -> str:
    """Clinical name for the review page, the sub-plane's name for brain images when known."""
    p = plane(plane_key)
    b = brain_plane(brain_plane_key) if p.key == "fetal_brain" else None
    return p.display_name if b is None else b.display_name
