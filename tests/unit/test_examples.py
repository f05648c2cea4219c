"""Every example in examples/ is a valid spec that says what its environment needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuenv.spec import load_spec, parse_spec
from gpuenv.spec.write import spec_data, to_toml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "gpuenv.toml").is_file())


def test_the_examples_exist():
    assert NAMES == sorted(
        ["mxnet-cu90", "tf-1.2.1-py3", "tf-pycharm", "tf-latest-py3", "tf-cuda9-old-driver", "torch", "jax-cpu"]
    )


@pytest.mark.parametrize("name", NAMES)
def test_example_is_valid_and_named_after_its_folder(name):
    spec = load_spec(EXAMPLES / name)
    assert spec.name == name


@pytest.mark.parametrize("name", NAMES)
def test_normalized_spec_reads_back_the_same(name):
    spec = load_spec(EXAMPLES / name)
    again = parse_spec(to_toml(spec_data(spec)), base_dir=EXAMPLES / name)
    assert again == spec


def test_mxnet_cu90_says_everything_its_article_needs():
    spec = load_spec(EXAMPLES / "mxnet-cu90")
    assert spec.frameworks == ["mxnet-cu90mkl==1.2.1"]
    assert spec.packages == ["matplotlib", "pandas", "ipython", "scikit-image"]
    assert spec.apt == ["libgfortran3"]
    assert spec.access.jupyter.mode == "notebook" and spec.access.jupyter.auth == "token"
    assert spec.access.gateway.port == 8889
    assert spec.workspace.mount == "/code"
    assert spec.network.apt_mirror == "http://mirrors.aliyun.com"
    assert spec.network.pip_index == "http://pypi.douban.com/simple"
    assert spec.network.pip_trusted_hosts == ["pypi.douban.com"]


def test_tf_121_py3():
    spec = load_spec(EXAMPLES / "tf-1.2.1-py3")
    assert spec.frameworks == ["tensorflow==1.2.1"] and spec.python == "3"
    assert spec.access.jupyter.port == 8888 and spec.workspace.mount == "/notebooks"
    assert spec.workspace.host == "."


def test_tf_pycharm_takes_its_requirements_file_and_publishes_tensorboard():
    spec = load_spec(EXAMPLES / "tf-pycharm")
    assert spec.requirements == "requirements.txt"
    assert "tensorflow" in (EXAMPLES / "tf-pycharm" / "requirements.txt").read_text().split()
    assert [(p.host, p.container) for p in spec.access.ports] == [(6006, 6006)]
    assert spec.access.jupyter.port == 8888


def test_tf_latest_py3_leaves_the_version_to_the_resolver():
    spec = load_spec(EXAMPLES / "tf-latest-py3")
    assert spec.frameworks == ["tensorflow"] and spec.python == "3" and spec.access.jupyter


def test_tf_cuda9_old_driver_plans_for_another_host():
    spec = load_spec(EXAMPLES / "tf-cuda9-old-driver")
    assert spec.gpu.driver == "384.90"
    assert spec.access.ssh.port == 8822
    assert spec.network.pip_index == "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert spec.access.jupyter is None


def test_torch_is_a_current_pytorch_with_jupyterlab():
    spec = load_spec(EXAMPLES / "torch")
    assert spec.frameworks == ["torch>=2.4"] and spec.access.jupyter.mode == "lab"


def test_defaults_are_secure():
    spec = parse_spec('frameworks = ["torch"]\n[access]\njupyter = true\n', base_dir=EXAMPLES / "torch")
    assert spec.access.bind == "127.0.0.1"
    assert spec.access.jupyter.auth == "token"
    assert spec.workspace.user == "host"
    assert spec.network.ca_certificates == "auto"
