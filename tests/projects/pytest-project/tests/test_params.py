"""Parametrised ids with spaces, brackets and '::', a class and a fixture error."""
import pytest


@pytest.mark.parametrize("text", ["a b", "x[1]", "k::v"], ids=["a b", "x[1]", "k::v"])
def test_ids(text):
    assert text


@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")


class TestGroup:
    def test_in_class(self):
        assert "abc".upper() == "ABC"

    @pytest.mark.parametrize("n", [1, 2], ids=["one <&> two", "two"])
    def test_param_in_class(self, n):
        assert n < 2

    def test_fixture_error(self, broken):
        assert broken
