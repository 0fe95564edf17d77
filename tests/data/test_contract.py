"""What every registered dataset promises, checked for each one the registry holds (a new dataset gets these
tests without editing a list): it says how to get it, its normalisation is per channel, and where it is
missing it fails before any work with one line naming where it looked."""

from pathlib import Path

import pytest

from nasproxy import DataNotFoundError, load_dataset
from nasproxy.data import DATASETS


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_keeps_its_contract(name, tmp_path, monkeypatch):
    info = DATASETS.get(name)
    assert info.name == name and info.how_to_get.strip()
    assert (info.mean is None) == (info.std is None)
    if info.mean is not None:
        assert len(info.mean) == len(info.std) in (1, 3) and all(s > 0 for s in info.std)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no user cache to find it in
    monkeypatch.chdir(tmp_path)
    try:
        load_dataset(name, data_root=tmp_path / "empty")
    except DataNotFoundError as missing:
        message = str(missing)
        assert "\n" not in message and str(tmp_path / "empty") in message
    else:  # only a system-wide copy can be found past an empty root: Debian's package
        assert (Path("/usr/share/datasets") / name).is_dir()
