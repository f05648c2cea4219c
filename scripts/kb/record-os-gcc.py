#!/usr/bin/env python3
"""Re-read each base OS release's gcc packages from its Packages indexes (kb/data/compilers.toml os_gcc,
tests/fixtures/kb/compilers/os_gcc.txt)."""
import lzma, re, ssl, sys, urllib.request, gzip, json
rels = [("debian10","http://archive.debian.org/debian","buster",["main"]),("debian11","http://deb.debian.org/debian","bullseye",["main"]),
 ("debian12","http://deb.debian.org/debian","bookworm",["main"]),("debian13","http://deb.debian.org/debian","trixie",["main"]),
 ("ubuntu16.04","http://archive.ubuntu.com/ubuntu","xenial",["main","universe"]),("ubuntu18.04","http://archive.ubuntu.com/ubuntu","bionic",["main","universe"]),
 ("ubuntu20.04","http://archive.ubuntu.com/ubuntu","focal",["main","universe"]),("ubuntu22.04","http://archive.ubuntu.com/ubuntu","jammy",["main","universe"]),
 ("ubuntu24.04","http://archive.ubuntu.com/ubuntu","noble",["main","universe"]),("ubuntu26.04","http://archive.ubuntu.com/ubuntu","resolute",["main","universe"])]
res = {}
for os_, mirror, suite, comps in rels:
    have = {}; default = None; urls = []
    for suites in ([suite, suite+"-updates"] if "ubuntu" in os_ else [suite]):
      for c in comps:
        for ext, dec in ((".xz", lzma.decompress), (".gz", gzip.decompress)):
            url = f"{mirror}/dists/{suites}/{c}/binary-amd64/Packages{ext}"
            try:
                data = dec(urllib.request.urlopen(url, timeout=120).read()).decode("utf-8", "replace")
            except Exception as e:
                continue
            urls.append(url)
            for block in data.split("\n\n"):
                m = re.search(r"^Package: (g\+\+|gcc)(-(\d+))?$", block, re.M)
                if not m: continue
                v = re.search(r"^Version: (.*)$", block, re.M).group(1)
                if m.group(3): have.setdefault(m.group(1), set()).add(int(m.group(3)))
                elif m.group(1) == "gcc" and suites == suite:
                    d = re.search(r"^Depends: .*?\bgcc-(\d+)\b", block, re.M)
                    default = int(d.group(1)) if d else None
            break
    both = sorted(have.get("gcc", set()) & have.get("g++", set()))
    res[os_] = {"default": default, "gcc_gxx": both, "sources": urls}
    print(os_, default, both, flush=True)
json.dump(res, open("/work/scratch18/lead/gccs.json","w"), indent=1)
