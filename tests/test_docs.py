"""The documentation holds together: every relative link resolves, and every file kept under results/ is cited by
a README (results/ holds current, cited results only; history is in git log)."""

import fnmatch
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout")

DOCS = (
    ["README.md", *_tracked("results/*.md", "benchmarks/*.md", "docs/*.md", "examples/*.md")]
    if (ROOT / ".git").exists()
    else []
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`]+`", flags=re.S)  # code blocks and spans: commands name files too
FIGURE = re.compile(r"(-by-flops)?\.(png|pdf)$")


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_resolves(doc):
    path = ROOT / doc
    broken = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{doc} links to missing files: {broken}"


def _cited_names() -> list[tuple[Path, str]]:
    """(a doc's folder, a path or glob it names in a link or in backticks)."""
    names = []
    for doc in DOCS:
        path = ROOT / doc
        text = path.read_text()
        words = [w.strip("`'\",;:()") for span in CODE.findall(text) for w in span.split()]
        names += [(path.parent, n.split("#")[0]) for n in LINK.findall(text) + [w for w in words if w]]
    return names


def _expand(pattern: str) -> list[str]:
    """`a-{x,y}.csv` names a-x.csv and a-y.csv."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    return [
        name
        for part in match.group(1).split(",")
        for name in _expand(pattern[: match.start()] + part + pattern[match.end() :])
    ]


def test_every_result_file_is_cited_by_a_readme():
    # a doc cites a file by its path from the doc's folder or from the root, or by its bare name (or a glob of
    # it) for a file in the doc's folder or below, where a table or a heading says which folder it means
    cited = []
    for folder, name in _cited_names():
        for pattern in _expand(name):
            if "/" in pattern.rstrip("/"):
                cited += [os.path.relpath(base / pattern, ROOT) for base in (folder, ROOT)]
            else:
                cited.append(os.path.relpath(folder, ROOT) + "/**/" + pattern)
    uncited = []
    for file in _tracked("results"):
        if file.endswith(".md"):
            continue
        # a figure is cited with the CSV it draws, a PDF with its PNG
        candidates = {file, FIGURE.sub(".csv", file), re.sub(r"\.pdf$", ".png", file)}
        if any(fnmatch.fnmatch(c, p) or fnmatch.fnmatch(c, p.replace("/**/", "/")) for c in candidates for p in cited):
            continue
        uncited.append(file)
    assert not uncited, f"files under results/ that no README cites: {uncited}"


RESULT_FILE = re.compile(r"\.(csv|png|pdf|py|sh|log|pt|journal|txt|json)$")


@pytest.mark.parametrize("doc", [d for d in DOCS if d.startswith("results/")])
def test_every_file_a_results_doc_names_exists(doc):
    # a path in backticks is a citation there (commands' outputs are written as FILE, DIR or a glob; a
    # superseded measurement as `git show COMMIT:PATH`)
    path = ROOT / doc
    missing = []
    for span in CODE.findall(path.read_text()):
        for word in span.split():
            word = word.strip("`'\",;:()")
            if "/" not in word or not RESULT_FILE.search(word) or re.search(r"[*{}<>$:]|FILE|DIR|OUT", word):
                continue
            if not any((base / word).exists() for base in (path.parent, ROOT, ROOT / "results")):
                missing.append(word)
    assert not missing, f"{doc} names files that do not exist: {missing}"
