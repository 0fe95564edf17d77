"""The README's Python walkthrough runs as written (on the real Fashion-MNIST, as a user would run it)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_python_walkthrough_runs(fmnist, tmp_path, monkeypatch, capsys):
    text = README.read_text()
    section = text[text.index("## The same flow in Python") :]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASPROXY_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    ranked, truth, report = namespace["ranked"], namespace["truth"], namespace["report"]
    assert ranked.finished and truth.finished and len(ranked.trials) == 4
    assert list(report.table["proxy"]) == ["random"] and report.truth.architectures == 4
    assert not (tmp_path / "results").exists()  # nothing written but what the code named
    assert "spearman" in capsys.readouterr().out
