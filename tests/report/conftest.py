"""What the report tests share: in-memory studies over 12 architectures, and a ground truth among them."""

import pandas as pd
import pytest

from nasproxy.report import StudyData

ARCHS = [f"arch{i:02d}" for i in range(12)]
TRIAL_COLUMNS = [
    "architecture",
    "score",
    "seconds",
    "device",
    "train_images",
    "test_mean",
    "val_accs",
    "test_accs",
    "val_accs_half",
]


def make_study_data(
    name, proxy, scores, *, protocol=None, repeats=None, test=None, seconds=1.0, half=None, proxy_file=None
):
    rows = []
    for i, (arch, score) in enumerate(zip(ARCHS, scores)):
        rows.append(
            {
                "architecture": arch,
                "score": score,
                "seconds": seconds,
                "device": "cpu",
                "train_images": None,
                "test_mean": None if test is None else sum(test[i]) / len(test[i]),
                "val_accs": None if repeats is None else repeats[i],
                "test_accs": None if test is None else test[i],
                "val_accs_half": None if half is None else half[i],
            }
        )
    base = {"proxy": proxy, "dataset": "d", "epochs": 100, "repeats": 2, "batch_size": 256, "lr": 0.01, "seed": 0}
    return StudyData(
        name=name,
        proxy=proxy,
        protocol={**base, **(protocol or {})},
        trials=pd.DataFrame(rows, columns=TRIAL_COLUMNS),
        source="mem",
        space="s",
        proxy_file=proxy_file,
    )


def truth_data():
    quality = [0.5 + 0.03 * i for i in range(12)]
    test = [[q + 0.001 * (i % 3), q - 0.001 * (i % 2)] for i, q in enumerate(quality)]
    half = [[q - 0.1, q - 0.1] for q in quality]
    return make_study_data(
        "gt", "full", quality, protocol={"epochs": 10}, repeats=test, test=test, seconds=100.0, half=half
    )


@pytest.fixture
def make_study():
    """A factory: ``make_study(name, proxy, scores, ...)`` is a StudyData of the 12 architectures."""
    return make_study_data


@pytest.fixture
def truth():
    """A 'full' ground truth of the 12 architectures, 2 repeats, scored at half the epochs too."""
    return truth_data()
