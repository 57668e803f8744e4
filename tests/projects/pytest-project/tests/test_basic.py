"""Plain tests: pass, fail, skip, xfail, xpass (non-strict and strict)."""
import pytest


def test_passes():
    assert 1 + 1 == 2


def test_fails():
    value = 41
    assert value == 42, "the answer is off by one"


@pytest.mark.skip(reason="not on this machine")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known bug 12")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed meanwhile")
def test_xpass():
    pass


@pytest.mark.xfail(reason="must fail", strict=True)
def test_xpass_strict():
    pass


def test_artifacts_path():
    # the runner names the test's artifacts directory, as tests written for
    # the TypeScript hypertest expect
    import os

    with open(os.path.join(os.environ["HT_TEST_ARTIFACTS_OUTPUT_PATH"], "from-test.txt"), "w") as f:
        f.write("written by the test\n")
