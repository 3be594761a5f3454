"""The Salomon 2006 image-scoring rubric for biometry planes, as data.

Salomon LJ, Bernard JP, Duyme M, et al. Feasibility and reproducibility of an image-scoring method
for quality control of fetal biometry in the second trimester. Ultrasound Obstet Gynecol
2006;27:34-40. **[V]** (abstract): 6 criteria for the head and abdomen planes, 4 for the femur, one
point each. The criteria themselves are **[V-impl]**, as encoded in a public QC application's label
lists (anchors.md 4(e)); their exact wording in the paper's Table 1 is unverified **[M]**, so the
wording below is the project's paraphrase, not a quotation.

Keys are stable (stored with every grade and AI pre-fill); order is the paper's order as listed in
anchors 4(e). The issue's wording of each criterion is kept in ``wording``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RUBRICS", "SALOMON_2006", "Criterion", "PlaneRubric", "rubric_for"]

SALOMON_2006 = (
    "Salomon LJ, Bernard JP, Duyme M, et al. Feasibility and reproducibility of an image-scoring "
    "method for quality control of fetal biometry in the second trimester. Ultrasound Obstet "
    "Gynecol 2006;27:34-40"
)
_WORDING_NOTE = "criterion [V-impl]; exact wording of the paper's table unverified [M]"


@dataclass(frozen=True)
class Criterion:
    """One scoring criterion: stable key, wording shown to graders, points (1 in Salomon 2006)."""

    key: str
    wording: str
    points: int = 1
    kind: str = ""
    """How the AI judges it: ``symmetry``, ``visible``, ``not_visible``, ``fills_image``,
    ``calipers``, ``ends_visible``, ``angle``."""
    structure: str | None = None
    """For ``visible`` / ``not_visible``: the detector output (structure name) it reads."""


@dataclass(frozen=True)
class PlaneRubric:
    plane: str
    display_name: str
    criteria: tuple[Criterion, ...]
    reference: str = SALOMON_2006
    note: str = _WORDING_NOTE

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.criteria)

    def criterion(self, key: str) -> Criterion:
        for c in self.criteria:
            if c.key == key:
                return c
        raise KeyError(f"no criterion {key!r} in the {self.plane} rubric")


RUBRICS: dict[str, PlaneRubric] = {
    "head": PlaneRubric(
        plane="head",
        display_name="Head (HC/BPD), trans-thalamic plane",
        criteria=(
            Criterion("head.symmetric", "Symmetrical plane", kind="symmetry"),
            Criterion(
                "head.thalami_visible",
                "Plane showing the thalami",
                kind="visible",
                structure="thalami",
            ),
            Criterion(
                "head.cavum_septi_pellucidi_visible",
                "Plane showing the cavum septi pellucidi",
                kind="visible",
                structure="cavum_septi_pellucidi",
            ),
            Criterion(
                "head.cerebellum_not_visible",
                "Cerebellum not visible",
                kind="not_visible",
                structure="cerebellum",
            ),
            Criterion(
                "head.fills_30pct", "Head occupying more than 30 % of the image", kind="fills_image"
            ),
            Criterion(
                "head.calipers_outer_skull",
                "Calipers / ellipse correctly placed (outer skull border)",
                kind="calipers",
            ),
        ),
    ),
    "abdomen": PlaneRubric(
        plane="abdomen",
        display_name="Abdomen (AC), transverse plane",
        criteria=(
            Criterion("abdomen.symmetric", "Symmetrical plane", kind="symmetry"),
            Criterion(
                "abdomen.stomach_visible",
                "Stomach bubble visible",
                kind="visible",
                structure="stomach",
            ),
            Criterion(
                "abdomen.umbilical_vein_portal_sinus_visible",
                "Umbilical vein at the level of the portal sinus visible",
                kind="visible",
                structure="umbilical_vein",
            ),
            Criterion(
                "abdomen.kidneys_not_visible",
                "Kidneys not visible",
                kind="not_visible",
                structure="kidneys",
            ),
            Criterion(
                "abdomen.fills_30pct",
                "Abdomen occupying more than 30 % of the image",
                kind="fills_image",
            ),
            Criterion(
                "abdomen.calipers_skin_line",
                "Calipers / ellipse correctly placed (skin line)",
                kind="calipers",
            ),
        ),
    ),
    "femur": PlaneRubric(
        plane="femur",
        display_name="Femur (FL)",
        criteria=(
            Criterion(
                "femur.both_ends_visible",
                "Both ends of the bone clearly visible",
                kind="ends_visible",
            ),
            Criterion("femur.angle_below_45", "Angle to the horizontal below 45°", kind="angle"),
            Criterion(
                "femur.fills_30pct",
                "Femur occupying more than 30 % of the image",
                kind="fills_image",
            ),
            Criterion(
                "femur.calipers_diaphysis_ends",
                "Calipers correctly placed (ends of the ossified diaphysis)",
                kind="calipers",
            ),
        ),
    ),
}

# Plane names other parts of the project use (inference.planes.taxonomy keys) → rubric.
_ALIASES = {
    "fetal_brain": "head",
    "trans_thalamic": "head",
    "fetal_abdomen": "abdomen",
    "fetal_femur": "femur",
}


def rubric_for(plane: str) -> PlaneRubric:
    """The rubric for ``"head"``, ``"abdomen"``, ``"femur"`` (or a taxonomy key such as
    ``"fetal_abdomen"``); ValueError naming the plane otherwise."""
    key = _ALIASES.get(plane, plane)
    try:
        return RUBRICS[key]
    except KeyError:
        raise ValueError(
            f"no Salomon 2006 rubric for plane {plane!r}; expected one of {sorted(RUBRICS)}"
        ) from None
