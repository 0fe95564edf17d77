import pytest

from nasproxy import UnknownNameError
from nasproxy._registry import Registry


def test_duplicate_names_are_rejected():
    reg = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="already registered under the name 'a'"):
        reg.register("a", 2)


def test_unknown_name_lists_choices():
    reg = Registry("thing")
    reg.register("alpha", 1)
    reg.register("beta", 2)
    with pytest.raises(UnknownNameError) as info:
        reg.get("gamma")
    assert str(info.value) == "unknown thing 'gamma'; choose one of: alpha, beta"


def test_decorator_and_pattern_listing():
    reg = Registry("thing")

    @reg.register("conv-a")
    def a():
        return 1

    reg.register("mlp", 3)
    assert reg.get("conv-a") is a
    assert reg.names("conv*") == ["conv-a"]
    assert "mlp" in reg and len(reg) == 2


def test_every_public_name_resolves_and_condense_is_the_function():
    import nasproxy
    import nasproxy.condensers  # importing the subpackage must not shadow the public function

    for name in nasproxy.__all__:
        assert getattr(nasproxy, name) is not None, name
    assert callable(nasproxy.condense) and nasproxy.condense.__module__ == "nasproxy.condensers._run"
