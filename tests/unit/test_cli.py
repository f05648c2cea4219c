"""The command line as a user meets it: a real process, its stdout, stderr and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpuenv import __version__
from gpuenv.spec.values import name_from_folder

ROOT = Path(__file__).resolve().parents[2]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def gpuenv(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_version():
    run = gpuenv("--version")
    snapshot = json.loads((ROOT / "src/gpuenv/kb/data/pypi.json").read_text())["meta"]["retrieved"]
    assert (run.returncode, run.stdout) == (0, f"gpuenv {__version__} (knowledge base of {snapshot})\n")
    assert json.loads(gpuenv("--version", "--json").stdout) == {
        "ok": True, "version": __version__, "kb_snapshot": snapshot}


def test_help_lists_only_the_verbs_that_exist():
    run = gpuenv("--help")
    verbs = [line.split()[0] for line in run.stdout.split("Commands:")[1].splitlines() if line.startswith("  ")]
    assert run.returncode == 0 and {"init", "spec", "plan", "matrix", "kb", "doctor", "generate", "build", "up",
                                    "verify", "ls", "status", "logs", "shell", "exec", "down", "rm", "push",
                                    "pull", "lock", "save", "load", "gpus", "export", "submit", "jobs",
                                    "cancel"} == set(verbs)          # job-config: hidden (a job's own step)


def test_init_writes_a_spec_that_checks(tmp_path):
    run = gpuenv("init", "tensorflow==1.2.1", "--python", "3.6", "--jupyter", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "gpuenv.toml").read_text()
    assert 'frameworks = ["tensorflow==1.2.1"]' in text and 'python = "3.6"' in text
    assert f'name = "{name_from_folder(tmp_path.name)}"' in text
    check = gpuenv("spec", "check", "--json", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    spec = json.loads(check.stdout)["spec"]
    assert spec["access"]["jupyter"] == {"mode": "lab", "port": 8888, "auth": "token"}
    assert spec["access"]["bind"] == "127.0.0.1"


def test_init_from_a_short_request_and_flags(tmp_path):
    run = gpuenv("init", "mxnet-cu90mkl 1.2.1 gateway", "-p", "matplotlib", "--apt", "libgfortran3",
                 "--mount", "/code", "--apt-mirror", "http://mirrors.aliyun.com", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    spec = json.loads(run.stdout)["spec"]
    assert spec["frameworks"] == ["mxnet-cu90mkl==1.2.1"] and spec["packages"] == ["matplotlib"]
    assert spec["access"]["gateway"] == {"port": 8889} and spec["workspace"]["mount"] == "/code"


def test_init_refuses_to_overwrite(tmp_path):
    (tmp_path / "gpuenv.toml").write_text("# mine\n")
    run = gpuenv("init", "torch", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("error: gpuenv.toml already exists\nhint: pass --force")
    assert (tmp_path / "gpuenv.toml").read_text() == "# mine\n"
    assert gpuenv("init", "torch", "--force", cwd=tmp_path).returncode == 0


def test_init_bad_flags_name_the_flag_and_write_nothing(tmp_path):
    run = gpuenv("init", "torch", "--python", "3.6.9", "--jupyter-port", "99999", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.splitlines()[:3] == [
        "error: the command line: 2 problems in the spec",
        '  --python: python: must be a Python version MAJOR or MAJOR.MINOR, such as "3" or "3.6" (got "3.6.9")',
        '      e.g. python = "3.6"',
    ]
    assert "--jupyter-port: access.jupyter.port: must be a TCP port between 1 and 65535" in run.stderr
    assert run.stderr.splitlines()[-1].startswith("hint: fix the flags or request words listed; nothing was written")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("verb", ["init", "up", "build"])
def test_a_bad_request_points_at_the_help_of_the_verb_that_was_run(tmp_path, verb):
    run = gpuenv(verb, "tensorflwo", cwd=tmp_path)
    assert run.returncode == 2
    assert "did you mean 'tensorflow'?" in run.stderr
    assert run.stderr.splitlines()[-1].endswith(f"`gpuenv {verb} --help` lists the flags")
    assert not list(tmp_path.iterdir())


def test_init_to_stdout(tmp_path):
    run = gpuenv("init", "torch", "jupyter", "-f", "-", cwd=tmp_path)
    assert run.returncode == 0 and 'frameworks = ["torch"]' in run.stdout
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir()))
def test_spec_check_every_example(name):
    run = gpuenv("spec", "check", str(EXAMPLES / name))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"ok: {EXAMPLES / name / 'gpuenv.toml'} is a valid spec")
    assert f'name = "{name}"' in run.stdout


def test_bad_spec_exit_2_every_problem_no_traceback(tmp_path):
    (tmp_path / "gpuenv.toml").write_text('python = 3.6\n[access.jupyter]\nprot = 1\n')
    run = gpuenv("spec", "check", str(tmp_path))
    assert run.returncode == 2 and run.stdout == ""
    path = tmp_path / "gpuenv.toml"
    assert run.stderr.splitlines() == [
        f"error: {path}: 2 problems in the spec",
        f"  {path}:1: python: must be text in quotes (got 3.6)",
        '      e.g. python = "3.6"',
        f"  {path}:3: access.jupyter.prot: unknown key 'prot'; did you mean 'port'?",
        "      e.g. port = 8888",
        "hint: fix what is listed, then run `gpuenv spec check` again; README.md#the-spec lists every key",
    ]
    assert "Traceback" not in run.stderr


def test_bad_spec_as_json(tmp_path):
    (tmp_path / "gpuenv.toml").write_text('[gpu]\ndriver = "new"\n')
    run = gpuenv("--json", "spec", "check", str(tmp_path))
    assert run.returncode == 2
    error = json.loads(run.stdout)["error"]
    assert error["type"] == "SpecError" and error["exit_code"] == 2
    assert error["problems"] == [{
        "field": "gpu.driver", "line": 2, "where": f"{tmp_path / 'gpuenv.toml'}:2",
        "message": 'must be "auto" (this host\'s driver) or an NVIDIA driver version such as "384.90" (got "new")',
        "example": 'driver = "384.90"',
    }]


def test_missing_spec(tmp_path):
    run = gpuenv("spec", "check", cwd=tmp_path)
    assert (run.returncode, run.stderr) == (
        2, "error: no spec at gpuenv.toml\nhint: write one with `gpuenv init`, or name it with --file PATH\n")


def test_unknown_flag_is_bad_input():
    run = gpuenv("spec", "check", "--frobnicate")
    assert run.returncode == 2
    first, hint = run.stderr.splitlines()
    assert first.startswith("error: No such option") and "--frobnicate" in first
    assert hint == "hint: see `gpuenv spec check --help`"


def test_unknown_verb_is_bad_input():
    run = gpuenv("frobnicate")
    assert run.returncode == 2 and run.stderr.startswith("error: No such command 'frobnicate'.")


def test_debug_shows_the_traceback(tmp_path):
    run = gpuenv("--debug", "spec", "check", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback (most recent call last)" in run.stderr


def test_init_where_it_cannot_write(tmp_path):
    (tmp_path / "file").write_text("")
    run = gpuenv("init", "torch", "--file", str(tmp_path / "file" / "gpuenv.toml"))
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: cannot write {tmp_path / 'file' / 'gpuenv.toml'}: ")
    assert "Traceback" not in run.stderr


def test_init_writes_with_the_users_umask_and_leaves_no_temporary_file(tmp_path):
    run = subprocess.run(["sh", "-c", f"umask 027 && exec {sys.executable} -m gpuenv init torch"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["gpuenv.toml"]
    assert (tmp_path / "gpuenv.toml").stat().st_mode & 0o777 == 0o640


def test_paths_with_brackets_are_printed_as_they_are(tmp_path):
    folder = tmp_path / "[bold]x"
    folder.mkdir()
    assert gpuenv("init", "torch", cwd=folder).returncode == 0
    run = gpuenv("spec", "check", str(folder))
    assert run.returncode == 0 and run.stdout.startswith(f"ok: {folder / 'gpuenv.toml'} is a valid spec")


def test_messages_are_printed_as_written_never_as_emoji(tmp_path):
    # rich turns `:name:` into an emoji unless told not to; paths and uid:gid pairs hold such pairs of colons
    run = gpuenv("up", "-f", "a:cd:b/gpuenv.toml", cwd=tmp_path)
    assert run.returncode == 2
    assert "a:cd:b/gpuenv.toml does not exist" in run.stderr
