"""Taxonomy: FETAL_PLANES_DB spellings, SonoNet mapping, measurements, protocols, bad names."""

import pytest

from inference.planes import taxonomy as tx


def test_six_classes_in_fpdb_spelling_and_fixed_order():
    assert [p.fpdb_name for p in tx.PLANES] == [
        "Fetal abdomen",
        "Fetal brain",
        "Fetal femur",
        "Fetal thorax",
        "Maternal cervix",
        "Other",
    ]
    assert tx.plane_index("Fetal femur") == 2
    assert tx.plane_index(" fetal  BRAIN ") == 1
    assert tx.plane("maternal_cervix").fpdb_name == "Maternal cervix"


def test_brain_sub_planes_and_not_a_brain():
    assert tx.brain_plane_index("Trans-thalamic") == 0
    assert tx.brain_plane_index("Trans-cerebellum") == 1
    assert tx.brain_plane_index("Trans-ventricular") == 2
    assert tx.brain_plane_index("Other") == 3
    assert tx.brain_plane_index("Not A Brain") is None
    assert tx.brain_plane_index("") is None


def test_unknown_names_raise_naming_the_name():
    with pytest.raises(tx.UnknownPlaneError, match="'Fetal heart'"):
        tx.plane("Fetal heart")
    with pytest.raises(tx.UnknownPlaneError, match="'Trans-orbital'"):
        tx.brain_plane("Trans-orbital")
    with pytest.raises(tx.UnknownPlaneError, match="'nuchal'"):
        tx.protocol("nuchal")


def test_sononet_views_map_onto_the_six_classes():
    assert len(tx.SONONET_VIEWS) == 14  # 13 views + background
    assert tx.sononet_view("4CH").plane_key == "fetal_thorax"
    assert tx.sononet_view("Brain (Cb.)").brain_plane_key == "trans_cerebellar"
    assert tx.sononet_view("Abdominal").plane_key == "fetal_abdomen"
    assert tx.sononet_view("Background").plane_key == "other"
    assert {v.plane_key for v in tx.SONONET_VIEWS} <= set(tx.PLANE_KEYS)


def test_measurements_per_plane():
    assert tx.measurements_for("fetal_brain", "trans_thalamic") == ("HC", "BPD", "OFD")
    assert tx.measurements_for("fetal_brain", "trans_cerebellar") == ()
    assert tx.measurements_for("Fetal abdomen") == ("AC",)
    assert tx.measurements_for("Fetal femur") == ("FL",)
    assert tx.measurements_for("Other") == ()


def test_protocols():
    assert [v.key for v in tx.protocol("biometry")] == [
        "head_trans_thalamic",
        "abdomen_ac",
        "femur_fl",
    ]
    mid = tx.protocol("mid_trimester")
    assert len(mid) == 13
    assert tx.view("heart_lvot").classifier_label is None  # required but not yet recognised


def test_display_names():
    assert tx.display_name("fetal_brain", "trans_thalamic") == "Head, trans-thalamic plane"
    assert tx.display_name("Fetal brain") == "Fetal head (axial brain plane)"
    assert tx.display_name("fetal_femur") == "Fetal femur"
