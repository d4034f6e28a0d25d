"""Config files: `base:` chains (a config is its difference), and every shipped config loads."""
from pathlib import Path

import pytest

from ever.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def test_every_shipped_config_loads():
    files = sorted((REPO / "configs").rglob("*.yaml"))
    for f in files:
        if not f.name.startswith("report"):  # grids: tests/test_book.py
            assert load_config(f).name, f


def test_base_lays_the_file_over_its_base_section_by_section(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("name: a\nmodel: {width: 24, proj_dim: 32}\ndata: {roots: [x, y]}\n")
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\nname: b\nmodel: {width: 8}\ndata: {roots: [z]}\n")
    (tmp_path / "sub" / "c.yaml").write_text("base: b.yaml\nname: c\ngcn: {enabled: true}\n")
    c = load_config(tmp_path / "sub" / "c.yaml", ["model.proj_dim=16"])
    assert c.name == "c" and c.gcn.enabled
    assert c.model.width == 8  # from b, over a
    assert c.model.proj_dim == 16  # from a, then the override
    assert c.data.roots == ["z"]  # lists are replaced, not joined


def test_the_ablation_cells_differ_from_the_main_config_only_where_they_say(tmp_path):
    main = load_config(REPO / "configs" / "crw-patch-cpu.yaml").to_dict()
    cell = load_config(REPO / "configs" / "ablation" / "obj8-gcn.yaml").to_dict()
    changed = {s: {k for k in main[s] if main[s][k] != cell[s][k]} for s in main if isinstance(main[s], dict)}
    assert {s: v for s, v in changed.items() if v} == {"nodes": {"kind", "seg_scale"},  # k=8, felzenszwalb: defaults
                                                         "gcn": {"enabled"}}


@pytest.mark.parametrize("text, message", [
    ("base: a.yaml\n", "makes a cycle"),
    ("base: nowhere.yaml\n", "nowhere.yaml not found"),
    ("base: [a.yaml]\n", "expected the path of a config file"),
])
def test_a_bad_base_is_one_line_naming_the_file(tmp_path, text, message):
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        load_config(tmp_path / "a.yaml")
    assert "a.yaml" in str(e.value) and "\n" not in str(e.value)
