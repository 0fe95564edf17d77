import pytest
import torch

from nasproxy import ArtifactError, CondensedSet, IncompatibleError


def _proxy(**meta):
    return CondensedSet(
        images=torch.randn(20, 1, 28, 28),
        labels=torch.arange(20) % 10,
        meta={"dataset": "mnist", "method": "random", "ipc": 2, **meta},
    )


def test_round_trip_keeps_images_labels_and_metadata(tmp_path):
    p = _proxy(seed=3, hyperparameters={"lr_img": 0.1})
    p.save(tmp_path / "p.pt")
    q = CondensedSet.load(tmp_path / "p.pt")
    assert torch.equal(p.images, q.images) and torch.equal(p.labels, q.labels) and q.meta == p.meta
    assert [f.name for f in tmp_path.iterdir()] == ["p.pt"]  # no temporary files left behind


@pytest.mark.parametrize("content", [b"", b"garbage" * 100])
def test_corrupt_files_give_a_clear_error(tmp_path, content):
    (tmp_path / "p.pt").write_bytes(content)
    with pytest.raises(ArtifactError, match="not a readable nasproxy condensed set"):
        CondensedSet.load(tmp_path / "p.pt")


def test_truncated_file_gives_a_clear_error(tmp_path):
    _proxy().save(tmp_path / "p.pt")
    data = (tmp_path / "p.pt").read_bytes()
    (tmp_path / "p.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError):
        CondensedSet.load(tmp_path / "p.pt")


def test_foreign_torch_file_is_rejected(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "model.pt")
    with pytest.raises(ArtifactError, match="not a nasproxy condensed set"):
        CondensedSet.load(tmp_path / "model.pt")


def test_missing_file(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        CondensedSet.load(tmp_path / "nope.pt")


def test_compatibility_checks(small_mnist):
    good = CondensedSet(
        images=torch.randn(10, 1, 28, 28),
        labels=torch.arange(10),
        meta={"dataset": "mnist", "val_fingerprint": small_mnist.val_fingerprint},
    )
    good.check_compatible(small_mnist)
    with pytest.raises(IncompatibleError, match="made from 'cifar10'"):
        CondensedSet(good.images, good.labels, {**good.meta, "dataset": "cifar10"}).check_compatible(small_mnist)
    with pytest.raises(IncompatibleError, match="another validation hold-out"):
        CondensedSet(good.images, good.labels, {**good.meta, "val_fingerprint": "x"}).check_compatible(small_mnist)
    with pytest.raises(IncompatibleError, match="images are"):
        CondensedSet(torch.randn(10, 3, 32, 32), good.labels, good.meta).check_compatible(small_mnist)
