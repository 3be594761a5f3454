"""The README's two FETAL_PLANES_DB commands, run on a miniature folder in that layout.

The real images are a 2 GB download that is not beside the project; phantom frames stand in for
them here, so this checks the plumbing (table, Images/, split, outputs), not accuracy.
"""

import json

import pytest
from PIL import Image

from inference.phantom import make_frame
from inference.planes.evaluate import main as evaluate_main
from inference.planes.train import main as train_main

pytestmark = pytest.mark.slow  # trains a network for one short epoch

ROWS = [
    ("fetal_abdomen", None, "Fetal abdomen", "Not A Brain"),
    ("fetal_brain", "trans_thalamic", "Fetal brain", "Trans-thalamic"),
    ("fetal_brain", "trans_cerebellar", "Fetal brain", "Trans-cerebellum"),
    ("fetal_femur", None, "Fetal femur", "Not A Brain"),
    ("fetal_thorax", None, "Fetal thorax", "Not A Brain"),
    ("maternal_cervix", None, "Maternal cervix", "Not A Brain"),
    ("other", None, "Other", "Not A Brain"),
]


@pytest.fixture(scope="module")
def fpdb(tmp_path_factory):
    root = tmp_path_factory.mktemp("FETAL_PLANES_DB")
    (root / "Images").mkdir()
    lines = ["Image_name;Patient_num;Plane;Brain_plane;Operator;US_Machine;Train "]
    for patient in (1, 2, 3):
        for i, (key, sub, plane, brain) in enumerate(ROWS):
            name = f"Patient{patient:05d}_Plane{i + 1}_1_of_1"
            img = make_frame(key, brain_plane=sub, seed=patient * 10 + i, shape=(128, 160)).image
            Image.fromarray(img).save(root / "Images" / f"{name}.png")
            lines.append(
                f"{name};{patient};{plane};{brain};Op;Voluson E6;{1 if patient < 3 else 0}"
            )
    (root / "FETAL_PLANES_DB_data.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return root


def test_train_then_evaluate_on_the_fpdb_layout(fpdb, tmp_path, capsys):
    out = tmp_path / "w"
    code = train_main(
        [
            "--out",
            str(out),
            "--fetal-planes-db",
            str(fpdb),
            "--no-shared-data",
            "--phantom",
            "0",
            "--epochs",
            "1",
            "--samples-per-epoch",
            "16",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "planes_classifier.metrics.json").read_text())
    assert metrics["meta"]["trained_on"]["real_images"] == 14  # patients 1 and 2 (Train = 1)
    assert metrics["held_out"]["real:fetal_planes_db_test"]["n"] == 7  # patient 3 (Train = 0)
    capsys.readouterr()
    code = evaluate_main(
        [
            "--images",
            str(fpdb / "Images"),
            "--labels",
            str(fpdb / "FETAL_PLANES_DB_data.csv"),
            "--weights",
            str(out / "planes_classifier.pt"),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 7 and report["split"] == "test"
    assert {k: v["support"] for k, v in report["per_class"].items()} == {
        "Fetal abdomen": 1,
        "Fetal brain": 2,
        "Fetal femur": 1,
        "Fetal thorax": 1,
        "Maternal cervix": 1,
        "Other": 1,
    }
    assert report["brain_plane"]["n"] == 2


def test_train_names_a_missing_fpdb_image(fpdb, tmp_path, capsys):
    broken = tmp_path / "fp"
    (broken / "Images").mkdir(parents=True)
    (broken / "FETAL_PLANES_DB_data.csv").write_bytes(
        (fpdb / "FETAL_PLANES_DB_data.csv").read_bytes()
    )
    code = train_main(
        ["--out", str(tmp_path / "w"), "--fetal-planes-db", str(broken), "--no-shared-data"]
    )
    assert code == 2
    assert "Patient00001_Plane1_1_of_1.png" in capsys.readouterr().out
