"""Line numbers of keys and array items, on TOML that tries to fool a line scanner."""

from __future__ import annotations

from gpuenv.spec.locate import key_lines, line_of

DOC = '''# a comment with [fake.table] and key = 1
name = "x"  # trailing comment
notes = """
[not.a.table]
port = 1
"""
literal = \'\'\'
also = "not a key"
\'\'\'
"quoted.key" = 1
dotted.inner.leaf = 2
frameworks = [
  "torch",   # first
  # a comment between items
  "tensorflow==1.2.1",
  [1, [2, 3]],
]

[access.jupyter]
mode = "lab"
inline = { a = 1, b = { c = "}" } }

[[server]]
host = "a"

[[server]]
host = "b"
'''


def test_keys_and_items_get_their_lines():
    lines = key_lines(DOC)
    assert lines[("name",)] == 2
    assert lines[("notes",)] == 3
    assert lines[("literal",)] == 7
    assert lines[("quoted.key",)] == 10
    assert lines[("dotted", "inner", "leaf")] == 11
    assert lines[("frameworks", 0)] == 13
    assert lines[("frameworks", 1)] == 15
    assert lines[("frameworks", 2)] == 16
    assert lines[("frameworks", 2, 1, 0)] == 16
    assert lines[("access", "jupyter")] == 19
    assert lines[("access", "jupyter", "mode")] == 20
    assert lines[("access", "jupyter", "inline", "b", "c")] == 21
    assert lines[("server", 1, "host")] == 27


def test_text_inside_strings_is_not_read_as_keys():
    lines = key_lines(DOC)
    assert ("not", "a", "table") not in lines
    assert ("port",) not in lines and ("also",) not in lines


def test_unwritten_field_takes_the_line_of_its_table():
    lines = key_lines(DOC)
    assert line_of(lines, ("access", "jupyter", "port")) == 19
    assert line_of(lines, ("gpu", "driver")) is None


def test_escaped_quotes_do_not_end_strings():
    lines = key_lines('a = "x\\\\"\nb = "say \\"c = 1\\""\nc = 2\n')
    assert lines == {("a",): 1, ("b",): 2, ("c",): 3}
