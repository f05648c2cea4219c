"""Short requests, as people type them, become the spec fields they mean."""

from __future__ import annotations

import pytest

from gpuenv.errors import BadInput
from gpuenv.spec.request import parse_request


@pytest.mark.parametrize("words,expected", [
    (["tensorflow==1.2.1"], {"frameworks": ["tensorflow==1.2.1"]}),
    (["tensorflow 1.2.1 py3"], {"frameworks": ["tensorflow==1.2.1"], "python": "3"}),
    (["tensorflow", "1.2.1", "py36", "jupyter"],
     {"frameworks": ["tensorflow==1.2.1"], "python": "3.6", "access": {"jupyter": {"mode": "lab"}}}),
    (["mxnet cu90 + gateway", "matplotlib", "pandas"],
     {"frameworks": ["mxnet"], "gpu": {"cuda": "9.0"}, "access": {"gateway": {}},
      "packages": ["matplotlib", "pandas"]}),
    (["torch>=2.4,<2.6", "cu121", "notebook", "tensorboard", "ssh"],
     {"frameworks": ["torch<2.6,>=2.4"], "gpu": {"cuda": "12.1"},
      "access": {"jupyter": {"mode": "notebook"}, "ssh": {}, "ports": [6006]}}),
    (["torch", "latest", "cpu"], {"frameworks": ["torch"], "gpu": {"devices": "none"}}),
    (["python3.10", "jax[cuda12]"], {"python": "3.10", "frameworks": ["jax[cuda12]"]}),
    (["cuda12", "py27"], {"gpu": {"cuda": "12"}, "python": "2.7"}),
    (["scikit-image", "0.14.0"], {"packages": ["scikit-image==0.14.0"]}),
    # a typo of a framework goes to frameworks, where the spec check says "did you mean"
    (["tensorflwo==1.2.1"], {"frameworks": ["tensorflwo==1.2.1"]}),
    (["pytorch"], {"frameworks": ["pytorch"]}),
    ([], {}),
])
def test_request_words(words, expected):
    assert parse_request(words) == expected


def test_unreadable_word():
    with pytest.raises(BadInput) as caught:
        parse_request(["torch", "@@@"])
    assert caught.value.message == "cannot read '@@@' in the request"
    assert "py36" in caught.value.hint


def test_the_same_setting_twice_differently():
    with pytest.raises(BadInput) as caught:
        parse_request(["py36", "py37"])
    assert caught.value.message == "the request sets python twice: '3.6', then '3.7' ('py37')"


@pytest.mark.parametrize("words", [["1.2.1", "tensorflow"], ["torch", "2.5", "2.6"], ["torch>=2", "2.5"]])
def test_a_version_that_pins_nothing(words):
    with pytest.raises(BadInput) as caught:
        parse_request(words)
    message = caught.value.message
    assert message.startswith("the version '") and "follows no unpinned requirement" in message
