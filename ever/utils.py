"""Small shared helpers: atomic writes, seeding, device choice, environment record."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch


def _os_error(e: BaseException) -> OSError | None:
    """The OSError with an errno behind ``e`` (``e`` itself, or what it was raised from or during: torch's
    writer reports a full disk as a RuntimeError raised while handling the OSError of ``write``)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError) and e.errno is not None:
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(f)`` on a temp file in ``path``'s folder, fsync it and rename it to ``path``: ``path``
    is either its old self or whole. A failed write (a full disk, a read-only folder) removes the temp
    file and raises ``OSError`` naming ``path`` (``e.filename``), whatever layer reported it."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        err = _os_error(e)
        if err is None:
            raise
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))


def writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create ``path`` if needed and check a file can be written in it, before any work is done there.
    A file in the way, a read-only folder or a full disk raise a one-line ``EverError``."""
    from ever.errors import EverError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".ever-write-check.")
        os.close(fd)
        os.unlink(tmp)
    except FileExistsError:
        raise EverError(f"{path}: cannot write {what} here: a file is in the way") from None
    except OSError as e:
        raise EverError(f"{path}: cannot write {what} here ({e.strerror or type(e).__name__})") from None
    return path


@contextlib.contextmanager
def hold_lock(path: str | Path, what: str):
    """Hold an exclusive lock on the file ``path`` (POSIX ``flock``; this process's pid written in it) for
    the block. Another process holding it raises a one-line ``EverError``: ``<folder>: <what> (pid N) ...``.
    The kernel drops a lock when its process dies, so a lock file left by a killed process never blocks.
    (No-op where ``fcntl`` does not exist.)"""
    from ever.errors import EverError

    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise EverError(f"{path.parent}: {what} (pid {pid}) holds {path.name}: wait for it to finish") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield
        finally:
            f.truncate(0)
            fcntl.flock(f, fcntl.LOCK_UN)


def nbytes(value: Any) -> int:
    """Bytes held by a tensor or an array (1 KiB for anything else)."""
    if torch.is_tensor(value):
        return value.numel() * value.element_size()
    if isinstance(value, np.ndarray):
        return value.nbytes
    return 1024


class LRU:
    """A dict bounded in bytes: beyond ``max_bytes`` the least recently used entries go (the newest always stays).

    c = LRU(64 * 2**20)          # size(value) -> bytes: nbytes unless given
    c.put(key, x); c.get(key)    # -> x, now the most recent; None when absent
    c.bytes, len(c), c.pop(key)
    """

    def __init__(self, max_bytes: int, size: Callable[[Any], int] = nbytes):
        self.max_bytes, self.size, self.bytes, self.d = max_bytes, size, 0, OrderedDict()

    def __len__(self) -> int:
        return len(self.d)

    def get(self, key: Hashable) -> Any:
        if key in self.d:
            self.d.move_to_end(key)
            return self.d[key]
        return None

    def pop(self, key: Hashable) -> Any:
        value = self.d.pop(key, None)
        if value is not None:
            self.bytes -= self.size(value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self.pop(key)
        self.d[key] = value
        self.bytes += self.size(value)
        while self.bytes > self.max_bytes and len(self.d) > 1:
            self.bytes -= self.size(self.d.popitem(last=False)[1])


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes (read in 1 MiB blocks), as hex."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def finite_state(state: dict[str, torch.Tensor]) -> int:
    """Number of floating-point tensors of a state dict holding a NaN or an infinity (0 = all finite);
    one device sync, so it is cheap enough to run every training step."""
    ts = [v for v in state.values() if torch.is_tensor(v) and v.is_floating_point()]
    return int(torch.stack([~torch.isfinite(v).all() for v in ts]).sum()) if ts else 0


def read_yaml(path: str | Path, error: type[Exception], what: str = "file") -> Any:
    """Parse a YAML file; a missing or unparsable file raises ``error`` with a one-line message."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN or infinity (Python or numpy) replaced by None and numpy scalars made Python
    numbers, so it writes as strict JSON (``NaN`` is not JSON: other readers refuse it)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def json_text(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON of ``obj`` (:func:`json_safe`: NaN and infinities as null; other objects as ``str``)."""
    return json.dumps(json_safe(obj), indent=indent, default=str, allow_nan=False)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json_text(obj) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` that never leaves a half-written file behind (:func:`atomic_write`; a full disk is
    an ``OSError`` naming ``path``, not torch's RuntimeError)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def count_flops(fn, *args: Any, **kwargs: Any) -> int:
    """FLOPs of one ``fn(*args, **kwargs)`` call (it is really executed, backward included if it calls it),
    counted by torch's ``FlopCounterMode``: matmul / conv / attention ops, 2 FLOPs per multiply-add;
    element-wise ops, norms and optimiser updates are not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def select_device(name: str = "auto") -> torch.device:
    """The one place the device is chosen: CUDA when available (or asked for), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from ever.errors import EverError

        raise EverError("device 'cuda' requested but no CUDA device is available (torch.cuda.is_available() is False)")
    return torch.device(name)


def git_commit(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_changes(cwd: str | Path | None = None) -> list[str] | None:
    """Tracked files under ``cwd`` (the package, for a run: its config is saved beside it, so only the code can
    differ unseen) that differ from the checkout's commit (``git status --porcelain``, paths from the repository
    root, untracked left out), so a run made from uncommitted code says so; None when git cannot tell."""
    try:
        out = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no", "--", "."],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return [line[3:] for line in out.stdout.splitlines()] if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    """Software and hardware facts recorded beside every run."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "git_changes": git_changes(Path(__file__).resolve().parent),  # [] = the commit's own code
    }
    return env
