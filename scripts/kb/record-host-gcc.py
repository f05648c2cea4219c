#!/usr/bin/env python3
"""Re-read the gcc check of include/crt/host_config.h in every x86_64 wheel of the given PyPI projects
(nvidia-cuda-crt, nvidia-cuda-nvcc-cu12, nvidia-cuda-nvcc-cu11) by HTTP range requests; writes JSON to
/work/scratch18/lead/ (edit OUT) for kb/data/compilers.toml host_gcc and tests/fixtures/kb/compilers/host_config.txt."""
import io, json, re, ssl, sys, urllib.request, zipfile
CTX = ssl.create_default_context(cafile="/etc/ssl/certs/ca-certificates.crt")
class HttpFile(io.RawIOBase):
    def __init__(self, url):
        self.url = url; self.pos = 0
        req = urllib.request.Request(url, method="HEAD")
        self.size = int(urllib.request.urlopen(req, context=CTX).headers["Content-Length"])
    def seekable(self): return True
    def readable(self): return True
    def tell(self): return self.pos
    def seek(self, off, whence=0):
        self.pos = off if whence == 0 else (self.pos + off if whence == 1 else self.size + off); return self.pos
    def read(self, n=-1):
        if n < 0: n = self.size - self.pos
        if n == 0 or self.pos >= self.size: return b""
        end = min(self.size, self.pos + n) - 1
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{end}"})
        data = urllib.request.urlopen(req, context=CTX).read()
        self.pos += len(data); return data
    def readinto(self, b):
        d = self.read(len(b)); b[:len(d)] = d; return len(d)
def files(project):
    req = urllib.request.Request(f"https://pypi.org/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    return json.load(urllib.request.urlopen(req, context=CTX))["files"]
out = []
for project in sys.argv[1:]:
    for f in files(project):
        fn = f["filename"]
        if not fn.endswith(".whl") or "x86_64" not in fn or "manylinux" not in fn: continue
        ver = fn.split("-")[1]
        try:
            z = zipfile.ZipFile(io.BufferedReader(HttpFile(f["url"]), 1 << 16))
            names = [n for n in z.namelist() if n.endswith("include/crt/host_config.h")]
            if not names: out.append((project, ver, None, None, fn)); continue
            text = z.read(names[0]).decode()
        except Exception as e:
            out.append((project, ver, "ERR", str(e)[:80], fn)); continue
        gt = re.search(r"#if __GNUC__ > (\d+)", text)
        lt = re.findall(r"__GNUC__ < (\d+)", text)
        out.append((project, ver, gt.group(1) if gt else None, ",".join(sorted(set(lt))) or None, f["url"]))
        print(out[-1], flush=True)
json.dump(out, open(f"/work/scratch18/lead/hostcfg-{sys.argv[1]}.json", "w"), indent=1)
