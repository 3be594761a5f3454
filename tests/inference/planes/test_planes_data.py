"""Label files: the real FETAL_PLANES_DB table, the shared sets' subject groups, the split."""

import os
from pathlib import Path

import pytest

from inference.planes import data

SHARED = Path(
    os.environ.get(
        "SONOREVIEW_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"
    )
)
FPDB_TABLE = SHARED / "fetal_planes_db" / "FETAL_PLANES_DB_data.csv"


@pytest.mark.skipif(not FPDB_TABLE.is_file(), reason=f"{FPDB_TABLE} not present")
def test_real_fetal_planes_db_table():
    rows = data.read_fpdb_table(FPDB_TABLE)
    assert len(rows) == 12400
    counts = {}
    for r in rows:
        counts[r.plane] = counts.get(r.plane, 0) + 1
    assert counts == {
        "other": 4213,
        "maternal_cervix": 1626,
        "fetal_thorax": 1718,
        "fetal_brain": 3092,
        "fetal_femur": 1040,
        "fetal_abdomen": 711,
    }
    brain = [r.brain_plane for r in rows if r.plane == "fetal_brain"]
    assert brain.count("trans_thalamic") == 1638
    assert brain.count("trans_cerebellar") == 714
    assert brain.count("trans_ventricular") == 597
    assert brain.count("other_brain") == 143
    assert all(r.brain_plane is None for r in rows if r.plane != "fetal_brain")
    first = rows[0]
    assert (first.image_name, first.patient, first.train) == (
        "Patient00001_Plane1_1_of_15",
        1,
        True,
    )
    assert sum(r.train for r in rows) == 7129  # "Train " column (trailing space in the header)
    assert data.is_fpdb_table(FPDB_TABLE)


def test_fpdb_table_with_unknown_class_names_the_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(
        "Image_name;Patient_num;Plane;Brain_plane;Operator;US_Machine;Train \n"
        "a;1;Fetal brain;Trans-thalamic;Op;Aloka;1\n"
        "b;2;Fetal hand;Not A Brain;Op;Aloka;0\n".encode("latin-1")
    )
    with pytest.raises(data.LabelError, match=r"line 3.*'Fetal hand'"):
        data.read_fpdb_table(p)


def test_fpdb_layout_missing_images_are_named(tmp_path):
    (tmp_path / "Images").mkdir()
    (tmp_path / "FETAL_PLANES_DB_data.csv").write_text(
        "Image_name;Patient_num;Plane;Brain_plane;Operator;US_Machine;Train \n"
        "Patient00001_Plane1_1_of_1;1;Other;Not A Brain;Op;Aloka;1\n",
        encoding="latin-1",
    )
    with pytest.raises(Exception, match=r"Patient00001_Plane1_1_of_1\.png"):
        data.fpdb_samples(tmp_path, split="train")


@pytest.mark.skipif(not (SHARED / "planes").is_dir(), reason=f"{SHARED} not present")
def test_shared_sets_groups_and_subject_split():
    samples = data.shared_samples(SHARED)
    by_source = {}
    for s in samples:
        by_source.setdefault(s.source, []).append(s)
    assert len(by_source["hc18"]) == 787 and len(by_source["psfhs"]) == 1358
    assert len(by_source["alzubaidi"]) == 57
    assert len(by_source["roboflow_normal"]) == 210 and len(by_source["roboflow_anomaly"]) == 210
    hc = {s.path.name: s.group for s in by_source["hc18"]}
    assert hc["010_HC.png"] == hc["010_2HC.png"] == "hc18:010"
    assert all(s.brain_plane is None for s in by_source["roboflow_anomaly"])
    train, test = data.split_by_group(samples, seed=0, held_out=0.25)
    assert not {s.group for s in train} & {s.group for s in test}
    assert 0.15 < len(test) / len(samples) < 0.35
    again = data.split_by_group(samples, seed=0, held_out=0.25)[1]
    assert [s.path for s in again] == [s.path for s in test]
    # FETAL_PLANES_DB patients shared by Roboflow and Alzubaidi images stay on one side
    fp = {s.group for s in samples if s.group.startswith("fpdb:")}
    assert fp
