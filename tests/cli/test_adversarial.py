"""Every user-facing file input, fed its bad cases through the CLI: one `error:` line, exit code 2, no
traceback, and nothing written (no output file, no temporary file, no study)."""

import pickle
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nasproxy.cli import main


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _condensed_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    marker = tmp / "pwned"
    (tmp / "a-folder.pt").mkdir()
    torch.save({"format": "something-else"}, tmp / "foreign.pt")
    torch.save({"format": "nasproxy-proxy", "images": torch.zeros(2, 1, 4, 4), "labels": torch.zeros(3)}, tmp / "d.pt")
    return {
        "missing": (tmp / "missing.pt", "does not exist"),
        "folder": (tmp / "a-folder.pt", "not a readable nasproxy condensed set"),
        "text": (_write(tmp / "text.pt", "hello"), "not a readable nasproxy condensed set"),
        "truncated": (_write(tmp / "trunc.pt", b"PK\x03\x04\x00\x00"), "not a readable nasproxy condensed set"),
        "plain pickle": (_write(tmp / "plain.pt", pickle.dumps({"a": 1})), "not a readable nasproxy condensed set"),
        "code-running pickle": (
            _write(tmp / "evil.pt", pickle.dumps({"x": _RunsCode(marker)})),
            "not a readable nasproxy condensed set",
        ),
        "foreign torch file": (tmp / "foreign.pt", "not a nasproxy condensed set"),
        "damaged condensed set": (tmp / "d.pt", "damaged"),
    }


@pytest.fixture
def cli(idx_root, tmp_path, monkeypatch):
    monkeypatch.setenv("NASPROXY_DATA", str(idx_root))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args, fragment: str):
        before = {p for p in tmp_path.rglob("*")}
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, result.output
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.output
        assert "Traceback" not in result.output
        after = {p for p in tmp_path.rglob("*")}
        assert not {p for p in after - before if not p.is_dir()}, f"{args} wrote {sorted(after - before)}"
        return lines[0]

    return invoke


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "folder",
        "text",
        "truncated",
        "plain pickle",
        "code-running pickle",
        "foreign torch file",
        "damaged condensed set",
    ],
)
def test_bad_condensed_files(cli, tmp_path, case):
    path, fragment = _condensed_files(tmp_path)[case]
    cli("info", path, fragment=fragment)
    cli("evaluate", path, "--networks", 1, "--epochs", 1, "--csv", tmp_path / "e.csv", fragment=fragment)
    cli("search", "--space", "tiny", "--proxy", "random", "--proxy-file", path, fragment=fragment)
    assert not (tmp_path / "pwned").exists()


def test_bad_dataset_files(cli, tmp_path):
    marker = tmp_path / "pwned"
    cifar = tmp_path / "c" / "cifar-10-batches-py"
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        _write(cifar / name, pickle.dumps({"data": [], "labels": [], "x": _RunsCode(marker)}))
    out = ["--out", tmp_path / "x.pt"]
    cli("condense", "--dataset", "cifar10", "--data-root", tmp_path / "c", *out, fragment="could run code")
    assert not marker.exists()
    _write(cifar / "data_batch_1", b"\x80\x04garbage")
    cli("condense", "--dataset", "cifar10", "--data-root", tmp_path / "c", *out, fragment="is damaged")
    cli("condense", "--dataset", f"folder:{tmp_path / 'nothing'}", *out, fragment=str(tmp_path / "nothing"))
    (tmp_path / "empty" / "train").mkdir(parents=True)
    cli("condense", "--dataset", f"folder:{tmp_path / 'empty'}", *out, fragment="is not an image folder dataset")
    _write(tmp_path / "bad.pt", "not torch")
    cli("condense", "--dataset", f"tensors:{tmp_path / 'bad.pt'}", *out, fragment="not a readable torch file")
    _write(tmp_path / "evil.pt", pickle.dumps({"x": _RunsCode(marker)}))
    cli("condense", "--dataset", f"tensors:{tmp_path / 'evil.pt'}", *out, fragment="not a readable torch file")
    assert not marker.exists()


def test_bad_search_spaces(cli, tmp_path):
    common = ["--proxy", "params", "--dataset", "mnist", "--holdout", 50]
    cli("search", "--space", _write(tmp_path / "a.yaml", "axes: [1, 2\n"), *common, fragment="not valid YAML")
    cli("search", "--space", _write(tmp_path / "b.yaml", "axes:\n  colour: [red]\n"), *common, fragment="colour")
    cli("search", "--space", tmp_path / "none.yaml", *common, fragment="does not exist")
    cli("search", "--space", f"{_write(tmp_path / 's.py', 'import nope')}:X", *common, fragment="failed to import")
    py = _write(tmp_path / "t.py", "class X:\n    pass\n")
    cli("search", "--space", f"{py}:X", *common, fragment="not a nasproxy.SearchSpace")
    cli("search", "--space", f"{py}:Missing", *common, fragment="defines no 'Missing'")


def test_bad_storage_urls(cli, tmp_path):
    common = ["--space", "tiny", "--proxy", "params", "--dataset", "mnist", "--holdout", 50]
    cli("search", *common, "--storage", "nosuchdb://x/y", fragment="cannot open storage")
    # a port on this machine where nothing listens: refused at once
    cli("search", *common, "--storage", "postgresql+psycopg://u:secret@127.0.0.1:9/db", fragment="cannot open storage")
    line = cli("search", *common, "--storage", "postgresql+psycopg://u:secret@127.0.0.1:9/db", fragment="***")
    assert "secret" not in line
    cli("export", "--study", "nope", "--storage", tmp_path / "none.journal", fragment="no storage")
    cli("report", "--space", "tiny", "--storage", tmp_path / "none.journal", fragment="no storage")


@pytest.mark.parametrize("where", ["/proc/nasproxy-test", "a-file"])
def test_bad_output_paths(cli, tmp_path, where):
    base = Path(where) if where.startswith("/") else _write(tmp_path / where, "x")
    cli(
        "condense",
        "--dataset",
        "mnist",
        "--holdout",
        50,
        "--method",
        "random",
        "--out",
        base / "p.pt",
        fragment="--out",
    )
    common = ["--space", "tiny", "--proxy", "params", "--dataset", "mnist", "--holdout", 50]
    cli("search", *common, "--storage", base / "s.journal", fragment="cannot write storage journal")
    cli("report", "--space", "tiny", "--out", base / "r", fragment="cannot write --out")


def _tensors(path: Path, *, n_train=60, n_test=20, train_labels=None, test_shape=None, train_shape=None) -> Path:
    g = torch.Generator().manual_seed(0)
    blob = {
        "train_images": torch.randint(0, 255, train_shape or (n_train, 1, 28, 28), generator=g, dtype=torch.uint8),
        "train_labels": torch.arange(n_train) % 10 if train_labels is None else train_labels,
        "test_images": torch.randint(0, 255, test_shape or (n_test, 1, 28, 28), generator=g, dtype=torch.uint8),
        "test_labels": torch.arange(n_test) % 10,
    }
    torch.save(blob, path)
    return path


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("fewer labels than images", "60 train images but 59 train labels"),
        ("labels out of range", "labels -1 are negative"),
        ("a class without training images", "classes 3 of 0 ... 9 have no training image"),
        ("test images with 3 channels", "test images are uint8 3x28x28 but training images uint8 1x28x28"),
        ("training images with 3 channels", "test images are uint8 1x28x28 but training images uint8 3x28x28"),
    ],
)
def test_inconsistent_tensor_files(cli, tmp_path, case, fragment):
    path = tmp_path / "data.pt"
    # a condensed set made while the file was whole, then the file as a user's mistake leaves it
    condensed_file = tmp_path / "proxies" / "p.pt"
    condensed_file.parent.mkdir()
    made = CliRunner().invoke(
        main,
        ["condense", "--dataset", f"tensors:{_tensors(path)}", "--holdout", "10", "--method", "random", "--ipc", "2",
         "--out", str(condensed_file), "-q"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    if case == "fewer labels than images":
        _tensors(path, train_labels=torch.arange(59) % 10)
    elif case == "labels out of range":
        _tensors(path, train_labels=torch.arange(60) % 10 - 1)
    elif case == "a class without training images":
        labels = torch.arange(60) % 10
        _tensors(path, train_labels=torch.where(labels == 3, 4, labels))
    elif case == "test images with 3 channels":
        _tensors(path, test_shape=(20, 3, 28, 28))
    else:
        _tensors(path, train_shape=(60, 3, 28, 28))
    for backend in ("aten", "cpu-kernels"):  # refused at load, before any network runs on any backend
        line = cli(
            "evaluate", condensed_file, "--backend", backend, "--networks", 1, "--epochs", 1,
            "--csv", tmp_path / "e.csv", fragment=fragment,
        )  # fmt: skip
        assert str(path) in line
    out = ["--out", tmp_path / "x.pt"]
    cli("condense", "--dataset", f"tensors:{path}", "--holdout", 10, "--method", "random", *out, fragment=fragment)


def _image_folder(root: Path) -> Path:
    from PIL import Image

    for split in ("train", "test"):
        for cls in ("a", "b"):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(6):
                Image.new("L", (28, 28), color=40 * i).save(folder / f"{i}.png")
    return root


def test_a_truncated_image_is_named(cli, tmp_path):
    root = _image_folder(tmp_path / "imgs")
    broken = root / "train" / "b" / "3.png"
    broken.write_bytes(broken.read_bytes()[:40])
    line = cli(
        "condense", "--dataset", f"folder:{root}", "--holdout", 2, "--method", "random", "--ipc", 1,
        "--out", tmp_path / "x.pt", fragment="cannot read image",
    )  # fmt: skip
    assert str(broken) in line


def test_a_decompression_bomb_is_named(cli, tmp_path):
    from PIL import Image

    root = _image_folder(tmp_path / "imgs")
    bomb = root / "train" / "a" / "big.png"
    Image.new("1", (15_000, 15_000)).save(bomb)  # a small file that decodes to 225 megapixels
    line = cli(
        "condense", "--dataset", f"folder:{root}", "--holdout", 2, "--method", "random", "--ipc", 1,
        "--out", tmp_path / "x.pt", fragment="too large to open safely",
    )  # fmt: skip
    assert str(bomb) in line
