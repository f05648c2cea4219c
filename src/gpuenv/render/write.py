"""Writing a rendered folder: the only I/O of render/. All or nothing, and never over a user's own file.

A file gpuenv did not write (its first lines do not say "gpuenv generate") is never replaced unless
asked (`force`); the tokens already in an .env are kept, so that regenerating never logs anyone out;
.gitignore gets an `.env` line (added to, never rewritten). Every file is first written next to its
place and then renamed, so an error leaves the folder as it was.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

from gpuenv.errors import BadInput, StorageError
from gpuenv.render import File, Rendered
from gpuenv.render.envfile import GITIGNORE_LINES, TOKENS
from gpuenv.render.recipe import SUPPORT

MARK = "gpuenv generate"


def existing_tokens(out: Path) -> dict[str, str]:
    """Tokens of an .env gpuenv wrote before (kept on regeneration)."""
    path = out / ".env"
    if not path.is_file():
        return {}
    found = dict(re.findall(r"^([A-Z_]+)=(\S+)$", path.read_text(errors="replace"), re.M))
    return {k: v for k, v in found.items() if k in TOKENS}


def foreign_files(rendered: Rendered, out: Path) -> list[str]:
    """Files in `out` that rendering would replace but gpuenv did not write."""
    return foreign_paths([f.path for f in rendered.files], out)


def foreign_paths(paths: list[str], out: Path) -> list[str]:
    return [p for p in paths if (out / p).is_file() and not _ours(out, p)]


def _ours(out: Path, relative: str) -> bool:
    if relative.startswith(f"{SUPPORT}/"):
        return True                      # the support folder is gpuenv's own
    text = (out / relative).read_text(errors="replace")
    if relative.endswith("devcontainer.json"):
        return "(gpuenv)" in text
    return MARK in "".join(text.splitlines(keepends=True)[:3])


def write(rendered: Rendered, out: Path, force: bool = False) -> list[str]:
    """Write every file of `rendered` into `out`; returns the paths written (relative). A folder that
    cannot be written (read-only, not permitted, full) is a StorageError, and leaves `out` as it was."""
    check_foreign([f.path for f in rendered.files], out, force)
    files = list(rendered.files) + [_gitignore(out)]
    made = _missing_folders(out, files)
    try:
        _write_all(out, files)
    except OSError as exc:
        _remove_empty(made)
        raise StorageError.from_os(exc, out) or exc from None
    return [f.path for f in files]


def check_foreign(paths: list[str], out: Path, force: bool) -> None:
    foreign = [] if force else foreign_paths(paths, out)
    if foreign:
        raise BadInput(f"{out} already has files that gpuenv did not write: {', '.join(foreign)}",
                       "move them away, choose another folder with --out, or replace them with --force")


def write_more(files: list[File], out: Path, force: bool = False) -> list[str]:
    """Files beside a written folder (kubernetes.yaml), by the same rules: never over a user's own file,
    each staged and renamed into place."""
    check_foreign([f.path for f in files], out, force)
    try:
        _write_all(out, files)
    except OSError as exc:
        raise StorageError.from_os(exc, out) or exc from None
    return [f.path for f in files]


def check_writable(out: Path) -> None:
    """A StorageError now when `out` (or the folder it would be made in) cannot be written: said before a
    plan, a pull or a base build that take minutes, not after them."""
    folder = next((p for p in (out, *out.parents) if p.exists()), Path("/"))
    if not folder.is_dir() or os.access(folder, os.W_OK | os.X_OK):
        return                                   # a file in the way is write()'s to say
    code = errno.EROFS if os.statvfs(folder).f_flag & os.ST_RDONLY else errno.EACCES
    raise StorageError.from_os(OSError(code, os.strerror(code), str(folder)), out) or AssertionError(code)


def _write_all(out: Path, files: list[File]) -> None:
    staged: list[tuple[Path, Path]] = []
    try:
        for f in files:
            staged.append((_stage(out, f), out / f.path))
        for temp, final in staged:
            os.replace(temp, final)
    finally:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)


def _stage(out: Path, f: File) -> Path:
    final = out / f.path
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f.text)
        os.chmod(name, f.mode)
    except BaseException:
        os.unlink(name)                 # a full disk: no half-written temporary file is left
        raise
    return Path(name)


def _missing_folders(out: Path, files: list[File]) -> list[Path]:
    """The folders writing `files` would create, deepest first (removed again when writing fails)."""
    folders = {out / Path(f.path).parent for f in files} | {out}
    missing = {p for folder in folders for p in (folder, *folder.parents) if not p.exists()}
    return sorted(missing, key=lambda p: len(p.parts), reverse=True)


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass


def _gitignore(out: Path) -> File:
    path = out / ".gitignore"
    text = path.read_text() if path.is_file() else ""
    missing = [line for line in GITIGNORE_LINES if line not in text.splitlines()]
    if missing:
        text = (text if not text or text.endswith("\n") else text + "\n")
        text += "# gpuenv generate: .env holds the Jupyter and gateway tokens\n" + "\n".join(missing) + "\n"
    return File(".gitignore", text, _mode(path, 0o644))


def _mode(path: Path, default: int) -> int:
    return path.stat().st_mode & 0o777 if path.exists() else default

