import textwrap

import pytest
import torch

from nasproxy import NasproxyError
from nasproxy.spaces import GridSpace, list_spaces, load_space


def test_paper720_has_the_papers_axes():
    space = load_space("paper720")
    assert len(space) == 720
    assert space.axes["width"] == [32, 64, 128, 256] and space.axes["depth"] == [1, 2, 3, 4]
    assert len({c.arch_id for c in space.candidates()}) == 720
    assert "tiny" in list_spaces() and "paper720" in list_spaces()


@pytest.mark.slow
def test_every_paper720_architecture_runs_forward_on_fashion_mnist(fmnist):
    space = load_space("paper720")
    batch = fmnist.train_images[:2]
    for cand in space.candidates():
        net = space.build(cand.spec, channels=1, num_classes=10, image_size=(28, 28))
        with torch.no_grad():
            out = net(batch)
        assert out.shape == (2, 10) and torch.isfinite(out).all(), cand.arch_id


def test_sampling_is_seeded_and_in_space_order():
    space = load_space("paper720")
    a, b = space.sample(20, seed=3), space.sample(20, seed=3)
    assert a == b and a != space.sample(20, seed=4)
    order = [c.arch_id for c in space.candidates()]
    assert [order.index(c.arch_id) for c in a] == sorted(order.index(c.arch_id) for c in a)


def test_yaml_space(tmp_path):
    path = tmp_path / "widths.yaml"
    path.write_text("name: widths\nfamily: convnet\naxes:\n  width: [8, 16]\n  depth: [1, 2]\nfixed:\n  norm: batch\n")
    space = load_space(str(path))
    assert space.name == "widths" and len(space) == 4
    assert {c.spec["norm"] for c in space.candidates()} == {"batch"}
    space.validate(channels=1, num_classes=10, image_size=(28, 28))


def test_a_yaml_file_in_the_working_directorys_search_spaces_is_a_space_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "mine.yaml").write_text("axes:\n  width: [8, 16]\n")
    assert "mine" in list_spaces() and "paper720-w64" in list_spaces()  # the checkout's own are found too
    assert load_space("mine").name == "mine" and len(load_space("mine")) == 2
    assert len(load_space("paper720-w64")) == 360


@pytest.mark.parametrize(
    "body,message",
    [
        ("axes:\n  width: []\n", "has no values"),
        ("axes:\n  colour: [red]\n", "has no axis 'colour'"),
        ("axes:\n  norm: [weird]\n", "norm 'weird' is not one of"),
        ("axes: [1, 2]\n", "needs a mapping"),
        ("axes:\n  width: [8\n", "not valid YAML"),
        ("axes:\n  width: [8]\nextra: 1\n", "unknown keys extra"),
    ],
)
def test_broken_yaml_spaces_fail_clearly(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(NasproxyError, match=message):
        load_space(str(path))


def test_python_space_and_its_validation(tmp_path):
    (tmp_path / "myspace.py").write_text(
        textwrap.dedent("""
        from torch import nn
        from nasproxy import SearchSpace

        class MLPs(SearchSpace):
            name = "mlps"
            def architectures(self):
                for hidden in (16, 32):
                    yield {"hidden": hidden}
            def build(self, arch, *, channels, num_classes, image_size):
                h, w = image_size
                return nn.Sequential(nn.Flatten(), nn.Linear(channels * h * w, arch["hidden"]), nn.ReLU(),
                                     nn.Linear(arch["hidden"], num_classes))

        class Broken(MLPs):
            name = "broken"
            def build(self, arch, *, channels, num_classes, image_size):
                return nn.Linear(5, num_classes)
    """)
    )
    space = load_space(f"{tmp_path / 'myspace.py'}:MLPs")
    assert space.name == "mlps" and [c.arch_id for c in space.candidates()] == ["hidden=16", "hidden=32"]
    space.validate(channels=1, num_classes=10, image_size=(28, 28))
    broken = load_space(f"{tmp_path / 'myspace.py'}:Broken")
    with pytest.raises(NasproxyError, match="cannot build hidden=16 for images \\[1, 28, 28\\]"):
        broken.validate(channels=1, num_classes=10, image_size=(28, 28))
    with pytest.raises(NasproxyError, match="defines no 'Nope'"):
        load_space(f"{tmp_path / 'myspace.py'}:Nope")
    with pytest.raises(NasproxyError, match="unknown search space"):
        load_space("no-such-space")


def test_grid_space_rejects_depth_that_pools_away_small_images():
    space = GridSpace("deep", family="convnet", axes={"depth": [5]})
    with pytest.raises(NasproxyError, match="pools a 1x1 feature map"):
        space.validate(channels=1, num_classes=10, image_size=(16, 16))
