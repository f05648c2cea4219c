"""kb/data/companions.toml: the PyTorch ecosystem's prebuilt wheels per torch minor and CUDA variant, and
their pages; against the evidence (tests/fixtures/kb/companions/: FINDINGS.md with the commits read, and
the pages constructed in each project's own format under recorded/)."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from gpuenv.kb import load_table

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kb" / "companions"


def _routes() -> dict[str, dict]:
    return {r["family"]: r for r in load_table("companions")["route"]}


def test_each_find_links_row_names_the_page_its_route_gives_for_its_torch_and_variant():
    routes = _routes()
    for row in load_table("companions")["wheel"]:
        route = routes[row["family"]]
        assert set(row["packages"]) <= set(route["packages"]), row
        if route["kind"] != "find-links":
            continue
        cu = "cpu" if row["cuda"] == "cpu" else "cu" + row["cuda"].replace(".", "")
        template = route.get("url_cpu") if cu == "cpu" and route.get("url_cpu") else route["url"]
        fill = {"torch": row["torch"], "cu": cu, "torch_nodot": row["torch"].replace(".", "")}
        assert row["index"] == template.format(**fill), row
        assert row["local_version"] == route["local_version"].format(**fill), row


def test_every_route_and_row_is_cited_in_the_findings():
    cited = (FIXTURES / "FINDINGS.md").read_text()
    for row in [*load_table("companions")["route"], *load_table("companions")["wheel"]]:
        commit = re.search(r"/blob/([0-9a-f]{7,40})/", row["source"])
        assert (commit and commit.group(1)[:7] in cited) or row["source"] in cited, row["source"]


def test_the_recorded_pyg_page_holds_what_the_row_of_its_torch_and_variant_says():
    page = (FIXTURES / "recorded" / "pyg" / "whl" / "torch-2.4.0+cu121.html").read_text()
    files = re.findall(r">([^<]+\.whl)<", page)
    row = next(r for r in load_table("companions")["wheel"] if r["family"] == "pyg" and r["torch"] == "2.4"
               and r["cuda"] == "12.1" and "torch-scatter" in r["packages"])
    linux = [parse_wheel_filename(f) for f in files if "linux_x86_64" in f]
    scatter = [(v, {t.interpreter for t in tags}) for n, v, _, tags in linux if n == canonicalize_name("torch-scatter")]
    assert scatter and all(str(v) == f"{row['packages']['torch-scatter']}{row['local_version']}" for v, _ in scatter)
    pythons = {i for _, found in scatter for i in found}
    assert pythons == {"cp" + p.replace(".", "") for p in row["python"]}
