"""Config files: `base:` chains (a config is its difference), and every shipped config loads."""

from pathlib import Path

import pytest

from ever.config import ConfigError, flatten, load_config, with_defaults

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


@pytest.mark.parametrize("cell", sorted(p.name for p in (REPO / "configs" / "ablation").glob("*.yaml")))
def test_each_cpu_ablation_cell_is_the_main_config_but_its_nodes_and_gcn(cell):
    main = flatten(load_config(REPO / "configs" / "crw-patch-cpu.yaml").to_dict())
    got = flatten(load_config(REPO / "configs" / "ablation" / cell).to_dict())
    changed = {k for k in main if main[k] != got[k]} - {"name"}
    # object crops also come home to frame 0 itself (a rolled frame wraps their boxes: ever/nodes/objects.py), and so
    # does patchcrop9, their patch twin (its 48-px node step is larger than the base's 32-px roll)
    crop_home = {"walk.home_shift"} if got["nodes.kind"] == "object_crop" or cell == "patchcrop9.yaml" else set()
    assert all(k.startswith(("nodes.", "gcn.")) for k in changed - crop_home), changed
    assert crop_home <= changed
    assert changed or cell == "patch49.yaml"  # patch49 is the main config under its ablation name
    assert got["name"] == "abl-" + cell.removesuffix(".yaml")


def test_an_empty_section_over_a_base_changes_nothing_and_saved_configs_gain_new_fields(tmp_path):
    (tmp_path / "a.yaml").write_text("model: {width: 24}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nmodel:\n")
    assert load_config(tmp_path / "b.yaml").model.width == 24
    saved = load_config(tmp_path / "a.yaml").to_dict()
    del saved["eval"]["sequences"]  # a run saved before eval.sequences existed
    assert with_defaults(saved) == load_config(tmp_path / "a.yaml").to_dict()


@pytest.mark.parametrize(
    "text, message",
    [
        ("base: a.yaml\n", "makes a cycle"),
        ("base: nowhere.yaml\n", "nowhere.yaml not found"),
        ("base: [a.yaml]\n", "expected the path of a config file"),
    ],
)
def test_a_bad_base_is_one_line_naming_the_file(tmp_path, text, message):
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        load_config(tmp_path / "a.yaml")
    assert "a.yaml" in str(e.value) and "\n" not in str(e.value)
