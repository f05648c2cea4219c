"""Bad specs are refused with the file, line, field path, what is wrong and a valid example."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuenv.errors import BadInput, SpecError
from gpuenv.spec import load_spec, parse_spec


def problems(text: str, tmp_path: Path | None = None):
    with pytest.raises(SpecError) as caught:
        parse_spec(text, source="gpuenv.toml", base_dir=tmp_path)
    assert caught.value.exit_code == 2
    return [(p.where, p.field, p.message, p.example) for p in caught.value.problems]


CASES = [
    # (spec text, where, field, message, example)
    ('python = "3.6.1"', "gpuenv.toml:1", "python",
     'must be a Python version MAJOR or MAJOR.MINOR, such as "3" or "3.6" (got "3.6.1")', 'python = "3.6"'),
    ('python = 3.6', "gpuenv.toml:1", "python", "must be text in quotes (got 3.6)", 'python = "3.6"'),
    ('python = "2.6"', "gpuenv.toml:1", "python", 'of Python 2 only 2.7 is supported (got "2.6")', 'python = "3.6"'),
    ('name = "My Env"', "gpuenv.toml:1", "name",
     "must be 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit (got \"My Env\")",
     'name = "tf-1.2.1-py3"'),
    ('\nframeworks = ["torch", "tensorflwo==1.2.1"]', "gpuenv.toml:2", "frameworks[1]",
     "'tensorflwo' is not a framework gpuenv knows (torch, tensorflow, mxnet, jax, paddlepaddle, cupy); "
     "did you mean 'tensorflow'? other pip packages go under `packages` (got \"tensorflwo==1.2.1\")",
     'frameworks = ["tensorflow==1.2.1"]'),
    ('frameworks = ["pytorch"]', "gpuenv.toml:1", "frameworks[0]",
     "'pytorch' is not a framework's PyPI name: use 'torch' (the PyPI project 'pytorch' is a placeholder "
     "whose install fails; PyTorch is published as 'torch') (got \"pytorch\")", 'frameworks = ["tensorflow==1.2.1"]'),
    ('frameworks = ["torch>=2.4", "torch<3"]', "gpuenv.toml:1", "frameworks",
     "lists 'torch' twice (got [\"torch>=2.4\", \"torch<3\"])", 'frameworks = ["tensorflow==1.2.1"]'),
    ('packages = ["numpy", "tensorflow-gpu==1.2.1"]', "gpuenv.toml:1", "packages[1]",
     "'tensorflow-gpu' is a framework: list it under `frameworks` so that gpuenv picks its CUDA build "
     "(got \"tensorflow-gpu==1.2.1\")", 'packages = ["matplotlib", "pandas>=1.0"]'),
    ('packages = ["numpy>>1"]', "gpuenv.toml:1", "packages[0]",
     'must be a pip requirement such as "pandas", "numpy<2" or "scikit-image==0.14.0" (got "numpy>>1")',
     'packages = ["matplotlib", "pandas>=1.0"]'),
    ('apt = ["libgfortran3", "Bad Pkg"]', "gpuenv.toml:1", "apt[1]",
     'must be a Debian/Ubuntu package name, optionally =VERSION, such as "libgfortran3" (got "Bad Pkg")',
     'apt = ["libgfortran3"]'),
    ('base = "nvidia/cuda:9.0 cudnn7"', "gpuenv.toml:1", "base",
     'must be an image reference [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], such as '
     '"nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04" (got "nvidia/cuda:9.0 cudnn7")',
     'base = "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"'),
    ('[gpu]\ndriver = 384.90', "gpuenv.toml:2", "gpu.driver", "must be text in quotes (got 384.9)",
     'driver = "384.90"'),
    ('[gpu]\n\ndevices = [0, 0]', "gpuenv.toml:3", "gpu.devices", "names a GPU twice (got [0, 0])",
     "devices = [0, 1]"),
    ('[gpu]\ndevices = "some"', "gpuenv.toml:2", "gpu.devices",
     'must be "all", "none", "free", or a list of GPU indexes and UUIDs, such as [0, 1] or '
     '["GPU-8a1f6c2e-4b1d-2f3e-9c8a-0123456789ab"] (got "some")', "devices = [0, 1]"),
    ('[gpu]\ncompute_capability = ["sm_90", "x"]', "gpuenv.toml:2", "gpu.compute_capability",
     'must be "auto" or compute capabilities such as ["7.0", "8.6"] ("sm_86" also works) (got ["sm_90", "x"])',
     'compute_capability = ["6.1", "7.0"]'),
    ('[gpu]\ncuda = "90"', "gpuenv.toml:2", "gpu.cuda",
     'must be "auto" or a CUDA version MAJOR.MINOR such as "9.0" (got "90")', 'cuda = "9.0"'),
    ('[access.jupyter]\nmode = "hub"', "gpuenv.toml:2", "access.jupyter.mode",
     "must be one of 'lab' or 'notebook' (got \"hub\")", 'mode = "lab"'),
    ('[access.jupyter]\nport = 70000', "gpuenv.toml:2", "access.jupyter.port",
     "must be a TCP port between 1 and 65535 (got 70000)", "port = 8888"),
    ('[access.jupyter]\nport = "8888"', "gpuenv.toml:2", "access.jupyter.port",
     'must be a whole number (got "8888")', "port = 8888"),
    ('[access.jupyter]\nprot = 8888', "gpuenv.toml:2", "access.jupyter.prot",
     "unknown key 'prot'; did you mean 'port'?", "port = 8888"),
    ('[acess]\nbind = "127.0.0.1"', "gpuenv.toml:1", "acess",
     "unknown key 'acess'; did you mean 'access'?", 'access = { bind = "127.0.0.1" }'),
    ('[access]\njupyter = 5', "gpuenv.toml:2", "access.jupyter", "must be a table (got 5)",
     'jupyter = { mode = "lab" }'),
    ('[access]\nbind = "localhost"', "gpuenv.toml:2", "access.bind",
     'must be an IP address of this host, such as "127.0.0.1" or "0.0.0.0" (got "localhost")',
     'bind = "127.0.0.1"'),
    ('[access]\nports = [6006, "6006:x"]', "gpuenv.toml:2", "access.ports[1]",
     'must be a port number such as 6006, or "HOST:CONTAINER" such as "16006:6006" (got "6006:x")',
     "ports = [6006]"),
    ('[access]\nports = [":5"]', "gpuenv.toml:2", "access.ports[0]",
     'must be a port number such as 6006, or "HOST:CONTAINER" such as "16006:6006" (got ":5")',
     "ports = [6006]"),
    ('[access.ssh]\nauthorized_key = "~/.ssh/id_rsa"', "gpuenv.toml:2", "access.ssh.authorized_key",
     'must be "auto", a public key ("ssh-ed25519 AAAA..."), or the path of a public key file ending in .pub; '
     'never a private key (got "~/.ssh/id_rsa")', 'authorized_key = "~/.ssh/id_ed25519.pub"'),
    ('[workspace]\nmount = "/usr/local/code"', "gpuenv.toml:2", "workspace.mount",
     "must not be / or under a system folder (/bin, /boot, /dev, /etc, /lib, /lib64, /proc, /run, /sbin, "
     '/sys, /usr, /var) (got "/usr/local/code")', 'mount = "/workspace"'),
    ('[workspace]\nmount = "/home/gpuenv/work/"', "gpuenv.toml:2", "workspace.mount",
     "must not be /home/gpuenv or inside it: that is the environment's home, a volume of its own; a mount inside "
     'it races the engine when two services start at once. Use a folder such as "/workspace" '
     '(got "/home/gpuenv/work/")', 'mount = "/workspace"'),
    ('[workspace]\nmount = "/home/gpuenv"', "gpuenv.toml:2", "workspace.mount",
     "must not be /home/gpuenv or inside it: that is the environment's home, a volume of its own; a mount inside "
     'it races the engine when two services start at once. Use a folder such as "/workspace" '
     '(got "/home/gpuenv")', 'mount = "/workspace"'),
    ('[workspace]\nmount = "code"', "gpuenv.toml:2", "workspace.mount",
     'must be an absolute path inside the container, such as "/workspace" (got "code")', 'mount = "/workspace"'),
    ('[workspace]\nuser = "root"', "gpuenv.toml:2", "workspace.user",
     'must be "host" (your own UID and GID) or "UID:GID" such as "1000:1000" (got "root")', 'user = "host"'),
    ('[network]\npip_index = "pypi.douban.com/simple"', "gpuenv.toml:2", "network.pip_index",
     'must be a URL starting with http:// or https:// and naming a host (got "pypi.douban.com/simple")',
     'pip_index = "https://pypi.tuna.tsinghua.edu.cn/simple"'),
    ('[network]\napt_mirror = "http://[::1"', "gpuenv.toml:2", "network.apt_mirror",
     'must be a URL starting with http:// or https:// and naming a host (got "http://[::1")',
     'apt_mirror = "http://mirrors.aliyun.com"'),
    ('[network]\nhttps_proxy = "ftp://proxy:21"', "gpuenv.toml:2", "network.https_proxy",
     'must be a URL starting with http:// or https:// or socks5:// or socks5h:// and naming a host '
     '(got "ftp://proxy:21")', 'https_proxy = "http://proxy.example.com:3128"'),
    ('[network]\nca_certificates = [""]', "gpuenv.toml:2", "network.ca_certificates",
     'must be "auto" (the host\'s CAs), "none" (or []), or a list of CA certificate files such as '
     '["/usr/local/share/ca-certificates/corp.crt"] (got [""])',
     'ca_certificates = ["/usr/local/share/ca-certificates/corp.crt"]'),
    ('[network]\nregistry_mirror = "https://mirror example"', "gpuenv.toml:2", "network.registry_mirror",
     'must be a registry such as "registry.example.com:5000" or "https://mirror.example.com" '
     '(got "https://mirror example")', 'registry_mirror = "registry.example.com:5000"'),
]


@pytest.mark.parametrize("text,where,field,message,example", CASES, ids=[c[2] + ":" + c[0][:20] for c in CASES])
def test_one_bad_value(text, where, field, message, example):
    assert problems(text) == [(where, field, message, example)]


def test_every_problem_is_reported_at_once_in_file_order():
    text = '\n'.join([
        'python = "3.6.1"',
        'frameworks = [',
        '  "torch",',
        '  "tensorflwo",',
        ']',
        '[access.jupyter]',
        'port = 0',
        '[network]',
        'apt_mirror = "mirrors.aliyun.com"',
    ])
    found = problems(text)
    assert [(where, field) for where, field, _, _ in found] == [
        ("gpuenv.toml:1", "python"),
        ("gpuenv.toml:4", "frameworks[1]"),
        ("gpuenv.toml:7", "access.jupyter.port"),
        ("gpuenv.toml:9", "network.apt_mirror"),
    ]


def test_rules_across_fields():
    text = '\n'.join([
        '[gpu]',
        'model = "Tesla V100"',
        'compute_capability = "7.0"',
        '[access]',
        'ports = [8888]',
        '[access.jupyter]',
        'auth = "password"',
        '[access.ssh]',
        'port = 8888',
    ])
    assert problems(text) == [
        ("gpuenv.toml:3", "gpu.compute_capability", "give gpu.model or gpu.compute_capability, not both",
         'compute_capability = "auto"'),
        ("gpuenv.toml:5", "access.ports[0]", "host port 8888 is already used by access.jupyter.port", None),
        ("gpuenv.toml:6", "access.jupyter.password_hash", 'auth = "password" needs a password_hash',
         'password_hash = "argon2:$argon2id$..."'),
        ("gpuenv.toml:9", "access.ssh.port", "host port 8888 is already used by access.jupyter.port", None),
    ]


def test_a_requirements_file_that_is_not_there(tmp_path):
    assert problems('requirements = "reqs.txt"', tmp_path) == [
        ("gpuenv.toml:1", "requirements", f"no file at {tmp_path / 'reqs.txt'}: the path is relative to the "
         "spec's folder", 'requirements = "requirements.txt"')
    ]


def test_toml_syntax_error_gives_line_and_column():
    assert problems('name = "x"\n[access.jupyter]\nport = 88 88\n') == [
        ("gpuenv.toml:3", "", "TOML syntax: Expected newline or end of document after a statement at column 11", None)
    ]


def test_toml_syntax_error_at_the_end_of_the_file():
    assert problems('name = "x"\nframeworks = ["torch"\n') == [
        ("gpuenv.toml:2", "", "TOML syntax: Unclosed array at the end of the file", None)
    ]


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "gpuenv.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems[0].message == "the file is not UTF-8 text (byte 8)"


def test_missing_file_is_bad_input_with_a_hint(tmp_path):
    with pytest.raises(BadInput) as caught:
        load_spec(tmp_path / "nope.toml")
    assert caught.value.message == f"no spec at {tmp_path / 'nope.toml'}"
    assert "gpuenv init" in caught.value.hint


def test_a_folder_means_its_gpuenv_toml(tmp_path):
    (tmp_path / "gpuenv.toml").write_text('frameworks = ["torch"]\n')
    assert load_spec(tmp_path).frameworks == ["torch"]


def test_name_defaults_to_the_folder_made_valid(tmp_path):
    folder = tmp_path / "My Vision_Project"
    folder.mkdir()
    assert parse_spec("", base_dir=folder).name == "my-vision_project"
