"""Classification metrics on label indices: accuracy, per-class precision/recall/F1, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_report(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, names: Sequence[str]
) -> dict:
    """Metrics of predicted vs true class indices over the classes ``names``.

    macro_f1 averages F1 over the classes that occur in ``y_true`` (support > 0), so a test set
    without, say, cervix images is not penalised for it; ``confusion[i][j]`` counts true class i
    predicted as j. Precision of a class never predicted is 0.
    """
    t = np.asarray(y_true, np.int64)
    p = np.asarray(y_pred, np.int64)
    k = len(names)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (t, p), 1)
    per_class, f1s = {}, []
    for i, name in enumerate(names):
        tp = int(cm[i, i])
        support = int(cm[i].sum())
        predicted = int(cm[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": support,
        }
        if support:
            f1s.append(f1)
    n = len(t)
    return {
        "n": n,
        "accuracy": round(float((t == p).mean()), 4) if n else None,
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else None,
        "per_class": per_class,
        "labels": list(names),
        "confusion_matrix": cm.tolist(),
    }
