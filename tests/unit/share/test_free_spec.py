"""`[gpu] devices = "free"` in the spec, `up --gpus`, and what compose.yaml says for free GPUs."""

from __future__ import annotations

import pytest

from gpuenv.cli.main import run
from gpuenv.cli.up import given_gpus
from gpuenv.errors import BadInput, SpecError
from gpuenv.spec import parse_spec

TORCH = 'frameworks = ["torch"]\n'


def test_free_with_a_count_and_thresholds():
    spec = parse_spec(TORCH + '[gpu]\ndevices = "free"\ncount = 2\nidle_memory_mib = 512\nidle_utilization = 5\n',
                      source="gpuenv.toml", base_dir=None)
    gpu = spec.gpu
    assert (gpu.devices, gpu.count, gpu.idle_memory_mib, gpu.idle_utilization) == ("free", 2, 512, 5)


def test_free_takes_one_gpu_and_idle_means_below_1_gib_and_10_percent_by_default():
    spec = parse_spec(TORCH + '[gpu]\ndevices = "free"\n', source="gpuenv.toml", base_dir=None)
    assert (spec.gpu.count, spec.gpu.idle_memory_mib, spec.gpu.idle_utilization) == (None, 1024, 10)


@pytest.mark.parametrize("table, field, message", [
    ("count = 2\n", "gpu.count", 'count is used only with devices = "free"'),
    ('devices = [0]\nidle_utilization = 5\n', "gpu.idle_utilization", 'idle_utilization is used only with devices'),
    ('devices = "free"\ncount = 0\n', "gpu.count", "greater than or equal to 1"),
    ('devices = "free"\nidle_utilization = 101\n', "gpu.idle_utilization", "less than or equal to 100"),
    ('devices = "some"\n', "gpu.devices", '"free"'),
])
def test_bad_free_settings_name_the_field(table, field, message):
    with pytest.raises(SpecError) as caught:
        parse_spec(TORCH + "[gpu]\n" + table, source="gpuenv.toml", base_dir=None)
    problems = caught.value.problems
    assert [p.field for p in problems] == [field] and message in problems[0].message


@pytest.mark.parametrize("text, expected", [
    (None, None), ("all", "all"), ("free", "free"), ("0,1", [0, 1]), (" 1 ", [1]),
    ("GPU-57567e11-0be2-381b-5132-2ad95c262e58", ["GPU-57567e11-0be2-381b-5132-2ad95c262e58"]),
])
def test_up_gpus_flag(text, expected):
    assert given_gpus(text) == expected


@pytest.mark.parametrize("text", ["none", "0,0", "gpu0", ""])
def test_up_gpus_flag_refuses_what_is_no_gpu(text):
    with pytest.raises(BadInput) as caught:
        given_gpus(text)
    assert "--gpus" in caught.value.message or "--gpus" in (caught.value.hint or "")


def test_up_gpus_flag_is_bad_input_from_the_cli(capsys):
    assert run(["up", "--gpus", "0,0"]) == 2
    err = capsys.readouterr().err
    assert "--gpus 0,0" in err and "names a GPU twice" in err and "Traceback" not in err
