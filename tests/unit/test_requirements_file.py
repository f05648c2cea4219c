"""A spec's requirements file: confined to the spec's folder, text only, and read as pip reads one; each
directive honoured or refused naming FILE:LINE, never dropped silently (issue 15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpuenv.planning import TargetFlags, plan, request_from_spec, target_for
from gpuenv.errors import SpecError
from gpuenv.render import render
from gpuenv.render.recipe import Inputs
from gpuenv.spec import load_spec


def folder_with(tmp_path: Path, spec: str, **files: str) -> Path:
    folder = tmp_path / "env"
    folder.mkdir(parents=True)
    (folder / "gpuenv.toml").write_text('frameworks = ["torch>=2.4"]\nrequirements = "requirements.txt"\n' + spec)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def messages(folder: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(folder)
    assert caught.value.exit_code == 2
    return [p.message for p in caught.value.problems]


def gpuenv(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


# --- confinement --------------------------------------------------------------------------------------------


def test_a_host_file_outside_the_folder_is_refused_and_none_of_its_lines_reaches_the_dockerfile(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secretsalt$hash:19000:0:99999:7:::\n")
    folder = folder_with(tmp_path, "")
    (folder / "gpuenv.toml").write_text(f'requirements = "{secret}"\n')
    run = gpuenv("spec", "check", cwd=folder)
    assert run.returncode == 2, run.stderr
    assert "outside the spec's folder" in run.stderr and "secretsalt" not in run.stdout + run.stderr


def test_a_relative_path_that_climbs_out_is_refused(tmp_path):
    (tmp_path / "netrc.txt").write_text("machine x login y password hunter2\n")
    folder = folder_with(tmp_path, "")
    (folder / "gpuenv.toml").write_text('requirements = "../netrc.txt"\n')
    assert any("outside the spec's folder" in m for m in messages(folder))


def test_a_symlink_inside_the_folder_to_a_file_outside_is_refused(tmp_path):
    (tmp_path / "outside.txt").write_text("requests\n")
    folder = folder_with(tmp_path, "")
    (folder / "requirements.txt").symlink_to(tmp_path / "outside.txt")
    assert any("is outside the spec's folder" in m and "symlinks resolved" in m for m in messages(folder))


@pytest.mark.parametrize("data, said", [(b"requests\n\0\x01\x02", "is a binary file"),
                                        (b"requests\n\xff\xfe bad", "is not UTF-8 text")])
def test_a_binary_file_is_bad_input_not_an_internal_error(tmp_path, data, said):
    folder = folder_with(tmp_path, "")
    (folder / "requirements.txt").write_bytes(data)
    for verb in (("spec", "check"), ("generate",)):
        run = gpuenv(*verb, cwd=folder)
        assert run.returncode == 2 and said in run.stderr and "internal error" not in run.stderr, run.stderr


# --- directives ---------------------------------------------------------------------------------------------


def test_r_is_followed_inside_the_folder_relative_to_the_file_that_names_it(tmp_path):
    folder = folder_with(tmp_path, "", **{"requirements.txt": "-r reqs/base.txt\nrich\n",
                                          "reqs/base.txt": "--requirement=more.txt\nrequests>=2\n",
                                          "reqs/more.txt": "tqdm\n"})
    request, _ = request_from_spec(folder / "gpuenv.toml")
    assert request.packages == ("tqdm", "requests>=2", "rich")


def test_a_cycle_of_r_is_refused_with_the_cycle(tmp_path):
    folder = folder_with(tmp_path, "", **{"requirements.txt": "-r b.txt\n", "b.txt": "-r requirements.txt\n"})
    assert any("a cycle of -r: requirements.txt -> b.txt -> requirements.txt" in m for m in messages(folder))


def test_r_out_of_the_folder_is_refused(tmp_path):
    (tmp_path / "outside.txt").write_text("requests\n")
    folder = folder_with(tmp_path, "", **{"requirements.txt": "-r ../outside.txt\n"})
    assert any("outside the spec's folder" in m for m in messages(folder))


@pytest.mark.parametrize("line, said", [
    ("-c constraints.txt", "requirements.txt:2: constraints files (-c) are not supported"),
    ("-e .", "requirements.txt:2: editable installs (-e) cannot work in an image"),
    ("--editable=git+https://example.com/x.git#egg=x", "requirements.txt:2: editable installs cannot work"),
    ("requests==2.31.0 --hash=sha256:" + "0" * 64, "requirements.txt:2: options after a requirement (such as --hash)"),
    ("--find-links https://example.com/wheels", "requirements.txt:2: the pip option '--find-links' is not supported"),
    ("--no-index", "requirements.txt:2: the pip option '--no-index' is not supported"),
    ("./local/pkg", "requirements.txt:2: './local/pkg' is a local path or file"),
    ("dist/pkg-1.0-py3-none-any.whl", "is a local path or file"),
    ("git+https://example.com/x.git", "is a URL without a project name: write it as NAME @ git+https://"),
    ("x @ file:///etc/passwd", "requirements.txt:2: 'file:///etc/passwd' is not an http(s) or git+https URL"),
    ("torch; python_version < '3.13'", "torch is a framework: gpuenv picks its build"),
    ("torch @ https://example.com/torch.whl", "torch is a framework: gpuenv picks the build"),
    ("not a requirement!", "requirements.txt:2: 'not a requirement!' is not a pip requirement"),
    ("--index-url https://user:pw@example.com/simple", "must not hold a password"),
    ("-r", "requirements.txt:2: -r takes one value"),
])
def test_each_directive_gpuenv_does_not_honour_is_refused_naming_the_line(tmp_path, line, said):
    folder = folder_with(tmp_path, "", **{"requirements.txt": f"# my requirements\n{line}\nrich\n"})
    found = messages(folder)
    assert any(said in m for m in found), found


def test_markers_urls_and_continuations_are_honoured(tmp_path):
    text = ("rich; python_version >= '3.8'  # a comment\nx-pkg @ https://example.com/x-1.0.tar.gz\n"
            "tq\\\ndm==4.66.1\n")
    folder = folder_with(tmp_path, "", **{"requirements.txt": text})
    request, _ = request_from_spec(folder / "gpuenv.toml")
    assert request.packages == ('rich; python_version >= "3.8"', "x-pkg @ https://example.com/x-1.0.tar.gz",
                                "tqdm==4.66.1")


def _dockerfile(folder: Path) -> str:
    request, spec = request_from_spec(folder / "gpuenv.toml")
    return render(plan(request, target_for(TargetFlags(), spec, probe=False)), spec, Inputs()).text("Dockerfile")


def test_index_options_go_into_the_network_policy_as_if_written_in_network(tmp_path):
    text = ("--index-url https://mirror.example/simple\n--extra-index-url=https://extra.example/simple\n"
            "--trusted-host mirror.example\nrich\n")
    folder = folder_with(tmp_path, '[network]\npip_extra_indexes = ["https://own.example/simple"]\n',
                         **{"requirements.txt": text})
    net = load_spec(folder).network
    assert net.pip_index == "https://mirror.example/simple"
    assert net.pip_extra_indexes == ["https://own.example/simple", "https://extra.example/simple"]
    assert net.pip_trusted_hosts == ["mirror.example"]
    dockerfile = _dockerfile(folder)
    assert "ARG PIP_INDEX_URL=https://mirror.example/simple" in dockerfile
    assert "ARG PIP_TRUSTED_HOST=mirror.example" in dockerfile


def test_an_index_url_that_differs_from_network_pip_index_is_refused(tmp_path):
    folder = folder_with(tmp_path, '[network]\npip_index = "https://own.example/simple"\n',
                         **{"requirements.txt": "-i https://other.example/simple\nrich\n"})
    found = messages(folder)
    assert any("requirements.txt:1: --index-url https://other.example/simple differs from network.pip_index "
               "https://own.example/simple" in m for m in found), found


def test_the_same_index_in_both_places_is_fine_and_a_preset_index_gives_way(tmp_path):
    folder = folder_with(tmp_path, '[network]\npip_index = "https://own.example/simple"\n',
                         **{"requirements.txt": "-i https://own.example/simple\n"})
    assert load_spec(folder).network.pip_index == "https://own.example/simple"
    preset = folder_with(tmp_path / "p", '[network]\npreset = "cn"\n',
                         **{"requirements.txt": "-i https://own.example/simple\n"})
    net = load_spec(preset).network
    assert net.pip_index == "https://own.example/simple" and net.apt_mirror   # the preset still fills the rest


def test_a_spec_written_back_leaves_the_index_options_in_the_requirements_file(tmp_path):
    from gpuenv.spec.write import spec_data

    text = "--index-url https://mirror.example/simple\n--extra-index-url https://extra.example/simple\nrich\n"
    folder = folder_with(tmp_path, '[network]\npip_extra_indexes = ["https://own.example/simple"]\n',
                         **{"requirements.txt": text})
    written = spec_data(load_spec(folder), full=False)
    assert written["network"] == {"pip_extra_indexes": ["https://own.example/simple"]}


def test_every_file_read_is_listed_for_those_that_carry_the_spec_elsewhere(tmp_path):
    from gpuenv.spec.requirements import read_requirements

    folder = folder_with(tmp_path, "", **{"requirements.txt": "-r reqs/base.txt\n", "reqs/base.txt": "rich\n"})
    found = read_requirements(folder / "requirements.txt", folder)
    assert found.files == [(folder / "requirements.txt").resolve(), (folder / "reqs/base.txt").resolve()]
