"""The work cell: one validated file, and the MuJoCo scene built from it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import yaml

from wm_core.cell import SIM_CELL_FILE, cell_from_mapping, load_cell, sim_cell
from wm_core.cli import main
from wm_core.config import ConfigError


def sim_data() -> dict:
    return yaml.safe_load(SIM_CELL_FILE.read_text())


def test_the_sim_cell_describes_the_scene():
    cell = sim_cell()
    assert cell.table.x == (-0.35, 0.85) and cell.table.top_z == 0.0
    assert cell.obstacle_boxes is None and len(cell.obstacles) == 4  # the bin's walls
    (lo, hi) = cell.obstacles[0]
    assert lo[2] == 0.0 and math.isclose(hi[2], cell.bin.wall_height)
    k = cell.camera.k_for(128)
    assert math.isclose(k[0, 0], 0.5 * 128 / math.tan(math.radians(25)), rel_tol=1e-12)
    assert (k[0, 2], k[1, 2]) == (64.0, 64.0)


def test_the_mujoco_scene_is_built_from_the_cell():
    from wm_core.sim import SceneConfig, TableClearingEnv

    env = TableClearingEnv(SceneConfig(n_objects=1, render_images=False))
    env.reset(0)
    truth = env.camera_info(size=128)  # MuJoCo's own camera, as it renders
    cam = env.cell.camera
    np.testing.assert_allclose(truth.K, cam.k_for(128), rtol=1e-9)
    np.testing.assert_allclose(truth.T_world_cam, cam.pose, atol=1e-9)
    np.testing.assert_allclose(env.data.qpos[env._qadr], env.cell.arm.home_q, atol=1e-2)
    env.close()

    moved = dataclasses.replace(
        sim_cell(), bin=dataclasses.replace(sim_cell().bin, center=(0.1, 0.5))
    )
    env = TableClearingEnv(SceneConfig(n_objects=1, render_images=False), moved)
    env.reset(0)
    floor = env.model.geom("bin_floor").id
    np.testing.assert_allclose(env.data.geom_xpos[floor][:2], (0.1, 0.5))
    env.close()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": "red"}, "unknown field(s) ['colour']"),
        ({"table": {"x": [0.0, float("nan")], "y": [-0.6, 0.7]}}, "table.x"),
        ({"bin": {"center": [1.5, 0.0], "inner_half": 0.12, "wall_thickness": 0.01,
                  "wall_height": 0.08}}, "out of reach"),
        ({"workspace_lo": [0.0, 0.0, 1.0]}, "workspace_lo"),
        ({"keepout_boxes": [[[1, 1, 1], [0, 2, 2]]]}, "keepout_boxes[0]"),
        ({"keepout_boxes": [[["a", "b", "c"], [1, 2, 3]]]}, "keepout_boxes[0][0]"),
        ({"keepout_boxes": 5}, "keepout_boxes"),
    ],
)  # fmt: skip
def test_bad_cells_are_one_line_errors_naming_the_field(change, message):
    with pytest.raises(ConfigError) as exc:
        cell_from_mapping(sim_data() | change, "cell.yaml")
    text = str(exc.value)
    assert message in text and text.startswith("cell.yaml") and "\n" not in text


def test_a_camera_that_does_not_see_the_table_is_refused():
    data = sim_data()
    t = np.array(data["camera"]["T_world_cam"])
    t[:3, :3] = t[:3, :3] @ np.diag([1.0, -1.0, -1.0])  # turned round: looks at the sky
    data["camera"]["T_world_cam"] = t.tolist()
    with pytest.raises(ConfigError, match="sees 0% of the table"):
        cell_from_mapping(data, "cell.yaml")
    data["camera"]["T_world_cam"][0][0] = 2.0  # not a rotation
    with pytest.raises(ConfigError, match="not a rotation"):
        cell_from_mapping(data, "cell.yaml")


def test_unreadable_or_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read cell file"):
        load_cell(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("table: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_cell(bad)
    # found by fuzzing (config.cell_file_text): each crashed load_cell before
    for payload, match in (
        (b"name: \xff\xfe\n", "not UTF-8"),
        (b"name: 2024-13-45\n", "not valid YAML"),
        (b"{null: 1, name: a}\n", "unknown field"),  # a null key beside a string one
        (b"name: " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested too deeply"),
    ):
        bad.write_bytes(payload)
        with pytest.raises(ConfigError, match=match):
            load_cell(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_cell(bad)


def test_wm_eval_refuses_a_bad_cell_with_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "cell.yaml"
    bad.write_text(yaml.safe_dump(sim_data() | {"workspace_hi": [0.0, 0.0, float("inf")]}))
    out = tmp_path / "out"
    assert main(["eval", "--policy", "oracle", "--cell", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "workspace_hi" in err and str(bad) in err and err.count("\n") == 1
    assert not (out / "report.json").exists()
