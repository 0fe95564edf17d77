import pickle

import numpy as np
import pytest
import torch

from nasproxy import DataNotFoundError, NasproxyError, SplitSpec, load_dataset
from nasproxy.data import holdout_indices, read_idx
from tests._helpers import make_idx_dataset, needs_fmnist, write_idx


def test_idx_reader_reads_plain_and_gzip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", arr, compress=False)
    write_idx(tmp_path / "b", arr, compress=True)
    assert torch.equal(read_idx(tmp_path / "a"), torch.from_numpy(arr))
    assert torch.equal(read_idx(tmp_path / "b.gz"), torch.from_numpy(arr))


def test_truncated_idx_file_is_reported(tmp_path):
    write_idx(tmp_path / "a", np.zeros((2, 3, 4)), compress=False)
    (tmp_path / "a").write_bytes((tmp_path / "a").read_bytes()[:-5])
    with pytest.raises(NasproxyError, match="truncated"):
        read_idx(tmp_path / "a")


def test_mnist_layout_loads_with_balanced_seeded_holdout(small_mnist, idx_root):
    ds = small_mnist
    assert ds.image_shape == (1, 28, 28) and ds.num_classes == 10
    assert len(ds.train_images) == 150 and len(ds.val_images) == 50 and len(ds.test_images) == 50
    assert torch.bincount(ds.val_labels).tolist() == [5] * 10
    again = load_dataset("mnist", data_root=idx_root, split=SplitSpec(holdout=50, seed=0))
    other = load_dataset("mnist", data_root=idx_root, split=SplitSpec(holdout=50, seed=1))
    assert torch.equal(ds.val_images, again.val_images) and ds.val_fingerprint == again.val_fingerprint
    assert ds.val_fingerprint != other.val_fingerprint
    # the paper's MNIST normalisation, not statistics of this file
    assert ds.mean == (0.1307,) and ds.std == (0.3081,)


def test_holdout_never_overlaps_training_images():
    labels = torch.arange(100) % 4
    val = holdout_indices(labels, 4, SplitSpec(holdout=10, seed=3))
    assert len(set(val.tolist())) == 10
    assert torch.bincount(labels[val], minlength=4).tolist() == [3, 3, 2, 2]


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist", data_root=tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "pass download" in msg and "\n" not in msg
    assert "pass --download" in info.value.for_cli()  # how the command line says it


def test_cifar10_python_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}", 20) for i in range(1, 6)), ("test_batch", 10)]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), "labels": list(np.arange(n) % 10)}, f)
    ds = load_dataset("cifar10", data_root=tmp_path, split=SplitSpec(holdout=10))
    assert ds.image_shape == (3, 32, 32) and len(ds.train_images) == 90 and len(ds.test_images) == 10


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # would create the marker file when unpickled


def test_a_crafted_cifar_file_is_refused_without_running_its_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1], "x": _RunsCode(marker)}, f)
    with pytest.raises(NasproxyError, match=r"holds a io\.open object, which could run code"):
        load_dataset("cifar10", data_root=tmp_path, split=SplitSpec(holdout=2))
    assert not marker.exists()
    (folder / "data_batch_1").write_bytes(b"\x80\x04truncated")
    with pytest.raises(NasproxyError, match="is damaged"):
        load_dataset("cifar10", data_root=tmp_path, split=SplitSpec(holdout=2))


def test_tensor_file_and_image_folder_datasets(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    blob = {
        "train_images": torch.randint(0, 255, (40, 3, 8, 8), dtype=torch.uint8, generator=g),
        "train_labels": torch.arange(40) % 2,
        "test_images": torch.randint(0, 255, (10, 3, 8, 8), dtype=torch.uint8, generator=g),
        "test_labels": torch.arange(10) % 2,
    }
    torch.save(blob, tmp_path / "d.pt")
    ds = load_dataset(f"tensors:{tmp_path / 'd.pt'}", split=SplitSpec(holdout=4))
    assert ds.num_classes == 2 and ds.image_shape == (3, 8, 8) and len(ds.train_images) == 36
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(
                    tmp_path / "imgs" / split / cls / f"{i}.png"
                )
    folder = load_dataset(f"folder:{tmp_path / 'imgs'}", split=SplitSpec(holdout=2))
    assert folder.image_shape == (1, 8, 8) and folder.num_classes == 2 and len(folder.test_images) == 6


def test_user_datasets_are_recorded_by_absolute_path_so_other_folders_find_them(tmp_path, monkeypatch):
    from nasproxy import condense

    g = torch.Generator().manual_seed(0)
    (tmp_path / "work").mkdir()
    blob = {
        "train_images": torch.randint(0, 255, (40, 1, 8, 8), dtype=torch.uint8, generator=g),
        "train_labels": torch.arange(40) % 2,
        "test_images": torch.randint(0, 255, (10, 1, 8, 8), dtype=torch.uint8, generator=g),
        "test_labels": torch.arange(10) % 2,
    }
    torch.save(blob, tmp_path / "work" / "d.pt")
    monkeypatch.chdir(tmp_path / "work")
    ds = load_dataset("tensors:d.pt", split=SplitSpec(holdout=4))
    assert ds.name == f"tensors:{tmp_path / 'work' / 'd.pt'}"
    condensed = condense(ds, method="random", ipc=2, seed=0)
    monkeypatch.chdir(tmp_path)  # a later command elsewhere reads what the condensed set recorded
    again = load_dataset(condensed.meta["dataset"], split=SplitSpec(holdout=4))
    assert again.val_fingerprint == ds.val_fingerprint
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "missing.pt")):
        load_dataset("tensors:missing.pt")


def test_bad_tensor_file_is_a_clear_error(tmp_path):
    (tmp_path / "d.pt").write_text("not a tensor file")
    with pytest.raises(NasproxyError, match="not a readable torch file"):
        load_dataset(f"tensors:{tmp_path / 'd.pt'}")


@needs_fmnist
def test_debian_fashion_mnist_is_found_and_normalised(fmnist):
    assert len(fmnist.train_images) == 55_000 and len(fmnist.val_images) == 5_000 and len(fmnist.test_images) == 10_000
    assert torch.bincount(fmnist.val_labels).tolist() == [500] * 10
    # the paper's normalisation (0.2861 / 0.3530) makes the full training set ~zero-mean, unit-variance
    everything = torch.cat([fmnist.train_images, fmnist.val_images])
    assert abs(everything.mean().item()) < 0.01 and abs(everything.std().item() - 1) < 0.01


def test_uncompressed_idx_files_work_too(tmp_path):
    make_idx_dataset(tmp_path / "FashionMNIST" / "raw", compress=False)
    ds = load_dataset("fashion-mnist", data_root=tmp_path, split=SplitSpec(holdout=20))
    assert len(ds.train_images) == 180


def test_cifar100_python_layout(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 200), ("test", 100)):
        batch = {"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), "fine_labels": list(np.arange(n) % 100)}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    ds = load_dataset("cifar100", data_root=tmp_path, split=SplitSpec(holdout=100))
    assert ds.num_classes == 100 and ds.image_shape == (3, 32, 32) and len(ds.train_images) == 100


def test_svhn_mat_layout(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    (tmp_path / "svhn").mkdir()
    for name, n in (("train_32x32.mat", 40), ("test_32x32.mat", 20)):
        labels = (np.arange(n) % 10) + 1  # SVHN's files label the digit 0 as 10
        savemat(
            tmp_path / "svhn" / name, {"X": rng.integers(0, 255, (32, 32, 3, n), dtype=np.uint8), "y": labels[:, None]}
        )
    ds = load_dataset("svhn", data_root=tmp_path, split=SplitSpec(holdout=10))
    assert ds.image_shape == (3, 32, 32) and ds.num_classes == 10
    assert sorted(set(ds.test_labels.tolist())) == list(range(10))
