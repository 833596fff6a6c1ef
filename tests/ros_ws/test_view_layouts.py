"""The live-view layouts (wm.rviz, wm.foxglove.json) name only topics the stack publishes, with
the message type each display expects.

"What the stack publishes" is read from the nodes' own sources (every ``create_publisher`` /
``create_lifecycle_publisher`` call of the nodes that ``wm_bringup.stack`` starts), so a layout
cannot name a topic that no node creates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "ros_ws" / "src"
CONFIG = SRC / "wm_bringup" / "config"
NODE_FILES = [
    SRC / "wm_sim" / "wm_sim" / "sim_node.py",
    SRC / "wm_bringup" / "wm_bringup" / "world_node.py",  # the world nodes' topics (wm_sim's)
    SRC / "wm_perception" / "wm_perception" / "perception_node.py",
    SRC / "wm_planner" / "wm_planner" / "planner_node.py",
    SRC / "wm_safety" / "wm_safety" / "safety_node.py",
    SRC / "wm_bringup" / "wm_bringup" / "nodekit.py",  # every node's /diagnostics
]
PUBLISHER = re.compile(r"create_(?:lifecycle_)?publisher\(\s*(\w+),\s*(\"[^\"]+\"|\w+)", re.S)
RVIZ_TYPES = {
    "rviz_default_plugins/MarkerArray": "MarkerArray",
    "rviz_default_plugins/Image": "Image",
}


def published() -> dict[str, str]:
    """topic -> message type name, from the nodes' publisher calls (the safety node's arm and
    suction topics are named by constants: the defaults from wm_bringup.stack)."""
    stack = pytest.importorskip("wm_bringup.stack")
    msgs = pytest.importorskip("wm_bringup.msgs")
    names = {
        "SUCTION_TOPIC": [stack.SUCTION_TOPIC],
        "arm_topic": [stack.ARM_COMMAND_TOPIC, stack.SHADOW_TOPIC],
        "REFERENCE_TOPIC": [msgs.REFERENCE_TOPIC],  # wm_sim: its follower's reference
        "SUCTION_HOLDING_TOPIC": [msgs.SUCTION_HOLDING_TOPIC],  # wm_sim's vacuum switch
    }
    out: dict[str, str] = {}
    for f in NODE_FILES:
        for kind, topic in PUBLISHER.findall(f.read_text()):
            for t in [topic.strip('"')] if topic.startswith('"') else names[topic]:
                out[t] = kind
    return out


def test_the_node_sources_are_read():
    pubs = published()
    assert pubs["/wm/detections"] == "MarkerArray" and pubs["/wm/safety/verdict"] == "Header"
    assert pubs["/camera/image_raw"] == "Image" and pubs["/diagnostics"] == "DiagnosticArray"


def test_rviz_config_names_published_topics_of_the_right_type():
    pubs = published()
    cfg = yaml.safe_load((CONFIG / "wm.rviz").read_text())
    seen = set()
    for d in cfg["Visualization Manager"]["Displays"]:
        if "Topic" not in d:
            continue
        topic = d["Topic"]["Value"]
        assert topic in pubs, f"wm.rviz display {d['Name']!r}: nobody publishes {topic}"
        assert pubs[topic] == RVIZ_TYPES[d["Class"]], (topic, pubs[topic], d["Class"])
        seen.add(topic)
    assert {"/wm/plan_markers", "/wm/detections", "/camera/image_raw"} <= seen


def foxglove_topics(node, out: set[str]) -> set[str]:
    """Every topic a Foxglove layout names: ``topics`` keys and the topic part of message
    paths (``/wm/surprise.data``) and of ``*Topic`` / ``topicToRender`` values."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "topics" and isinstance(v, dict):
                out |= set(v)
            elif (
                isinstance(v, str)
                and v.startswith("/")
                and (k == "value" or k.endswith("Topic") or k == "topicToRender")
            ):
                out.add(re.split(r"[.\[]", v, maxsplit=1)[0])
            else:
                foxglove_topics(v, out)
    elif isinstance(node, list):
        for v in node:
            foxglove_topics(v, out)
    return out


def test_foxglove_layout_names_published_topics():
    pubs = published()
    layout = json.loads((CONFIG / "wm.foxglove.json").read_text())
    topics = foxglove_topics(layout["configById"], set())
    assert topics - set(pubs) == set(), f"nobody publishes {sorted(topics - set(pubs))}"
    want = {"/wm/detections", "/wm/plan_markers", "/wm/surprise", "/wm/safety/verdict"}
    assert want | {"/camera/image_raw", "/diagnostics", "/joint_states"} <= topics
    # every panel the layout arranges is configured, and every configured panel is shown
    shown: set[str] = set()

    def leaves(n):
        if isinstance(n, str):
            shown.add(n)
        else:
            leaves(n["first"])
            leaves(n["second"])

    leaves(layout["layout"])
    assert shown == set(layout["configById"])


def test_the_layout_checks_catch_an_unpublished_topic():
    assert foxglove_topics({"p": {"paths": [{"value": "/not/there.data"}]}}, set()) == {
        "/not/there"
    }
    assert "/not/there" not in published()


def test_the_layouts_are_installed():
    setup = (SRC / "wm_bringup" / "setup.py").read_text()
    assert 'glob("config/*.json")' in setup and 'glob("config/*.rviz")' in setup
