"""What a wheel installs: every package under nasproxy/, the C++ sources, and the built-in search spaces."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^packages = \[(.*?)\]", text, re.S | re.M).group(1)
    return set(re.findall(r'"([\w.]+)"', block))


def test_pyproject_lists_every_package_and_maps_search_spaces():
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nasproxy").rglob("__init__.py")} | {
        "nasproxy.search_spaces"
    }
    assert _listed_packages() == found
    text = (ROOT / "pyproject.toml").read_text()
    assert '"nasproxy.search_spaces" = "search_spaces"' in text


def test_built_in_spaces_are_data_files_found_by_name(tmp_path, monkeypatch):
    from nasproxy.spaces import list_spaces, load_space

    monkeypatch.chdir(tmp_path)  # no ./search_spaces here: only the built-in folder
    assert {"paper720", "paper720-w64", "tiny"} <= set(list_spaces())
    assert len(load_space("paper720")) == 720 and len(load_space("tiny")) == 8
    example = load_space(f"{ROOT / 'search_spaces' / 'residual_mlps.py'}:ResidualMLPs")
    assert example.name == "residual-mlps" and len(example) == 6
    example.validate(channels=1, num_classes=10, image_size=(28, 28))
