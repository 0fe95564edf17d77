"""What the search tests share: a small MNIST-format dataset found through the environment, and a fresh cache."""

import pytest


@pytest.fixture
def env(idx_root, tmp_path, monkeypatch):
    """The test's own folder as the working directory, the small dataset on $NASPROXY_DATA, a fresh cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASPROXY_DATA", str(idx_root))
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    return tmp_path
