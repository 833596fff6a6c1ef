"""``wm import-bag``: turn a rosbag2 recording (sqlite3 or MCAP) from a real arm into shards.

Read with ``rosbags`` (pure Python, both storage plugins, no ROS install needed). One step per
camera frame: the frame is paired with the latest ``/joint_states`` at or before its stamp
(frames with no joint state within ``max_joint_age_s`` are dropped and counted). Images are
resized to ``image_size`` x ``image_size`` with area interpolation; ``rgb8``, ``bgr8`` and
``mono8`` encodings are accepted, anything else is rejected with the encoding named.

Actions use our action space (``[dx, dy, dz, suction]``, see ``wm_core.sim.env``). With joint
trajectory commands in the bag, ``dx, dy, dz`` is the tool displacement that the latest
command asks for (FK of its last point minus FK of the current joints); without commands, the
realised tool displacement to the next frame. Both are divided by ``max_tool_step`` and clipped
to [-1, 1]. Suction comes from an optional ``std_msgs/Bool`` topic, else it is recorded as off.
Which sources were used is written to each shard's ``meta``.

Unstamped topics (``std_msgs/Bool``, ``Int64``) are timed by when the recorder logged them, and
compared with the time the recorder logged each frame, not with the frame's stamp: under a
simulator the stamps are simulated time and the log times wall time.

**The robot's own labels.** With the gripper's vacuum switch recorded (``/suction/holding``,
``std_msgs/Bool``), each frame gets ``obs/suction_held``. Told how many objects were set on the
table (``objects``: one counted human annotation per scene), the importer labels each scene
from its grips (:mod:`wm_core.data.grip_labels`): ``label/object_pos`` in every shard of a
scene the grips explain. A scene is the whole bag, or the part between two resets recorded on
``/wm/sim/reset`` (``std_msgs/Int64``: the episode driver's, standing in for a person saying
"I reset the table": each counts as one more annotation). Shards never span two scenes.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from wm_core.cell import Workcell, sim_cell
from wm_core.config import check_range
from wm_core.data.grip_labels import scene_labels
from wm_core.data.shards import Episode, ShardError, save_shard
from wm_core.paths import inside
from wm_core.robot import ArmKinematics

log = logging.getLogger(__name__)


class BagImportError(ValueError):
    """The bag cannot be imported; the message says which topic, field or file."""


@dataclass(frozen=True)
class BagTopics:
    image: str = "/camera/image_raw"
    joint_states: str = "/joint_states"
    command: str = "/arm_controller/joint_trajectory"
    suction: str = "/suction"
    """A std_msgs/Bool suction command topic; used when /joint_states has no suction joint."""
    suction_joint: str = "suction_cup"
    """The suction state as a joint in /joint_states (position > 0.5: on), as wm_sim and the
    wm stack publish it; stamped, so it is preferred to the (unstamped) suction topic."""
    holding: str = "/suction/holding"
    """The vacuum switch (std_msgs/Bool, optional): true while the cup holds an object."""
    reset: str = "/wm/sim/reset"
    """Scene resets (std_msgs/Int64, optional): where one scene ends and the next begins."""


@dataclass(frozen=True)
class ImportConfig:
    image_size: int = 128
    """Side of the stored square image (px); frames are resized to it."""
    max_joint_age_s: float = 0.2
    """A frame is dropped when the latest joint state is older than this."""
    max_tool_step: float = 0.018
    """Tool displacement (m) that maps to a unit action, as in SceneConfig."""
    episode_steps: int = 500
    """Long recordings are cut into shards of at most this many steps."""
    reset_settle_s: float = 0.3
    """Frames logged within this long after a reset are dropped: the table is being set up
    (with a real robot, a person's hands; in simulation, the old scene's last frame can be
    logged after the reset message), so they show neither scene and take no label."""

    def __post_init__(self) -> None:
        check_range("image_size", self.image_size, 16, 512, integer=True)
        check_range("max_joint_age_s", self.max_joint_age_s, 0.001, 10.0)
        check_range("max_tool_step", self.max_tool_step, 0.001, 0.05)
        check_range("episode_steps", self.episode_steps, 2, 100000, integer=True)
        check_range("reset_settle_s", self.reset_settle_s, 0.0, 10.0)


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _image_to_rgb(msg, size: int) -> np.ndarray:
    h, w, enc = int(msg.height), int(msg.width), str(msg.encoding)
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1}.get(enc)
    if channels is None:
        raise BagImportError(f"image encoding {enc[:40]!r} not supported; use rgb8, bgr8 or mono8")
    data = np.frombuffer(bytes(msg.data), np.uint8)
    if h == 0 or w == 0 or int(msg.step) != w * channels or data.size != h * w * channels:
        raise BagImportError(
            f"malformed image: {data.size} bytes for {w}x{h} {enc} (step {msg.step})"
        )
    img = data.reshape(h, w, channels)
    if enc == "bgr8":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif enc == "mono8":
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)  # [size, size, 3]


def import_bag(
    bag: Path,
    out: Path,
    topics: BagTopics = BagTopics(),
    cfg: ImportConfig = ImportConfig(),
    objects: int | None = None,
    cell: Workcell | None = None,
) -> dict:
    """Import one rosbag2 directory into shards under ``out``. Returns counts. ``objects``:
    how many objects each scene began with (labels from grips; None: no labels). ``cell``: the
    work cell recorded (arm base, table, bin; default the sim cell)."""
    bag, out = Path(bag), Path(out)
    if not (bag / "metadata.yaml").is_file():
        raise BagImportError(f"{bag} is not a rosbag2 directory (no metadata.yaml)")
    cell = cell or sim_cell()
    kin = ArmKinematics(base_pose=cell.arm.T_world_base)
    names = kin.arm.joint_names
    typestore = get_typestore(Stores.ROS2_JAZZY)
    images, joints, commands, suction, suction_js = [], [], [], [], []
    holding, resets = [], []
    dropped_commands = 0
    expected = {
        topics.image: "sensor_msgs/msg/Image",
        topics.joint_states: "sensor_msgs/msg/JointState",
        topics.command: "trajectory_msgs/msg/JointTrajectory",
        topics.suction: "std_msgs/msg/Bool",
        topics.holding: "std_msgs/msg/Bool",
        topics.reset: "std_msgs/msg/Int64",
    }
    # A bag is untrusted input: rosbags and its CDR decoder fail in many ways on damaged or
    # hand-made files (ReaderError, sqlite3/zstd errors, struct.error, IndexError,
    # UnicodeDecodeError...). Each becomes one BagImportError naming the bag and the topic.
    where = "opening the bag"
    try:
        with Reader(bag) as reader:
            present = {c.topic for c in reader.connections}
            for needed in (topics.image, topics.joint_states):
                if needed not in present:
                    raise BagImportError(
                        f"topic {needed!r} not in {bag}; it has {sorted(present)[:20]}"
                    )
            wanted = [c for c in reader.connections if c.topic in expected]
            for c in wanted:
                if c.msgtype != expected[c.topic]:
                    raise BagImportError(
                        f"{bag}: topic {c.topic!r} has type {str(c.msgtype)[:80]!r}, "
                        f"expected {expected[c.topic]}"
                    )
            where = "reading messages"
            for conn, logged_ns, raw in reader.messages(connections=wanted):
                where = f"decoding a {conn.topic} message"
                msg = typestore.deserialize_cdr(raw, conn.msgtype)
                where = "reading messages"
                if conn.topic == topics.image:
                    img = _image_to_rgb(msg, cfg.image_size)
                    images.append((_stamp(msg), logged_ns * 1e-9, img))
                elif conn.topic == topics.joint_states:
                    joints.append((_stamp(msg), _joint_vector(msg, names)))
                    if topics.suction_joint in msg.name:
                        on = msg.position[list(msg.name).index(topics.suction_joint)]
                        if np.isfinite(on):
                            suction_js.append((_stamp(msg), bool(on > 0.5)))
                elif conn.topic == topics.command and len(msg.points):
                    cmd = _command_vector(msg, names)
                    if cmd is None:
                        dropped_commands += 1
                    else:
                        commands.append((_stamp(msg), cmd))
                elif conn.topic == topics.suction:
                    suction.append((logged_ns * 1e-9, bool(msg.data)))
                elif conn.topic == topics.holding:
                    holding.append((logged_ns * 1e-9, bool(msg.data)))
                elif conn.topic == topics.reset:
                    resets.append(logged_ns * 1e-9)
    except BagImportError:
        raise
    except Exception as exc:
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise BagImportError(
            f"{bag}: damaged or unreadable bag ({where}: {type(exc).__name__}: {why})"
        ) from exc
    joints.sort(key=lambda x: x[0])
    commands.sort(key=lambda x: x[0])
    j_t = [t for t, _ in joints]
    c_t = [t for t, _ in commands]
    # stamped suction (the joint) is looked up by the frame's stamp, the unstamped topics by
    # the frame's log time
    suction_on = _Series(suction_js or suction)
    suction_clock = 0 if suction_js else 1
    held = _Series(holding) if holding else None
    resets.sort()
    steps, dropped, settling = [], 0, 0
    for t, t_log, img in sorted(images, key=lambda x: x[0]):
        r = bisect_right(resets, t_log) - 1
        if r >= 0 and t_log - resets[r] < cfg.reset_settle_s:
            settling += 1
            continue
        i = bisect_right(j_t, t) - 1
        if i < 0 or t - j_t[i] > cfg.max_joint_age_s:
            dropped += 1
            continue
        q, qd = joints[i][1]
        # NaN/inf, or beyond float32 (the shard's dtype, where it would become inf): dropped
        lim = np.finfo(np.float32).max
        if not (np.all(np.abs(q) <= lim) and np.all(np.abs(qd) <= lim)):
            dropped += 1
            continue
        k = bisect_right(c_t, t) - 1
        cmd = commands[k][1] if k >= 0 else None
        s_on = suction_on.at((t, t_log)[suction_clock])
        s_held = None if held is None else held.at(t_log)
        scene = bisect_right(resets, t_log)
        steps.append((t, img, q, qd, cmd, s_on, s_held, scene))
    if len(steps) < 2:
        raise BagImportError(
            f"{bag}: fewer than 2 usable frames ({dropped} dropped: no fresh "
            f"joint state within {cfg.max_joint_age_s} s; {settling} in the "
            f"{cfg.reset_settle_s} s after a reset)"
        )
    if objects is not None and held is None:
        raise BagImportError(
            f"{bag}: labels from grips need the vacuum switch, and topic {topics.holding!r} "
            "is not in the bag"
        )
    out.mkdir(parents=True, exist_ok=True)
    shards, scenes, split = 0, [], _scenes(steps)
    for scene_steps in split:
        labels = None
        if objects is not None:
            tool = np.array([kin.tool_position(s[2]) for s in scene_steps])  # [S, 3]
            got = scene_labels(tool, np.array([s[6] for s in scene_steps]), cell, objects)
            labels = got.object_pos  # [S, K, 3] or None
            scenes.append(
                {"steps": len(scene_steps), "grips": got.grips, "in_bin": got.in_bin}
                | {"objects_found": got.objects_found, "labelled": got.explained}
                | ({"why_not": got.reason} if got.reason else {})
            )
            if not got.explained:
                log.warning("%s: scene %d not labelled: %s", bag, len(scenes) - 1, got.reason)
        for start in range(0, len(scene_steps) - 1, cfg.episode_steps):
            end = start + cfg.episode_steps + 1
            chunk = scene_steps[start:end]
            if len(chunk) < 2:
                break
            episode = _episode(chunk, kin, cfg, bag, topics)
            if labels is not None:
                episode.labels["object_pos"] = labels[start:end]
                episode.meta["object_pos_source"] = "suction grips (wm_core.data.grip_labels)"
                episode.meta["annotations"] = {"objects": objects, "scene": len(scenes) - 1}
            path = inside(out, f"{bag.name}_{shards:04d}.npz")
            try:
                save_shard(path, episode)
            except ShardError as exc:  # a value the checks above let through
                raise BagImportError(f"{bag}: cannot store the imported episode: {exc}") from exc
            shards += 1
    imported = sum(len(s) - 1 for s in split)  # a scene of one frame makes no step
    if shards == 0:
        raise BagImportError(
            f"{bag}: no scene has 2 usable frames ({len(steps)} frames, split by "
            f"{len(resets)} reset(s) on {topics.reset})"
        )
    return {
        "bag": str(bag),
        "frames": len(images),
        "steps": imported,
        "dropped_frames": dropped,
        "dropped_at_resets": settling,
        "dropped_commands": dropped_commands,
        "shards": shards,
        "action_source": "command" if commands else "realised",
        "vacuum_switch": held is not None,
        "resets": len(resets),
        "scenes": scenes,
        "scenes_labelled": sum(s["labelled"] for s in scenes),
        "human_annotations": 0 if objects is None else len(scenes),
        "out": str(out),
    }


def _joint_vector(msg, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    index = {n: i for i, n in enumerate(msg.name)}
    if len(index) != len(msg.name):
        raise BagImportError(f"/joint_states has duplicate joint names {list(msg.name)[:20]}")
    if len(msg.position) != len(msg.name):
        raise BagImportError(
            f"/joint_states has {len(msg.name)} names but {len(msg.position)} positions"
        )
    missing = [n for n in names if n not in index]
    if missing:
        raise BagImportError(f"/joint_states lacks joints {missing}; it has {list(msg.name)[:20]}")
    pos = np.array([msg.position[index[n]] for n in names], np.float64)
    vel = (
        np.array([msg.velocity[index[n]] for n in names], np.float64)
        if len(msg.velocity) == len(msg.name)
        else np.zeros(len(names))
    )
    return pos, vel


def _command_vector(msg, names: tuple[str, ...]) -> np.ndarray | None:
    index = {n: i for i, n in enumerate(msg.joint_names)}
    if len(index) != len(msg.joint_names):
        raise BagImportError(
            f"joint trajectory has duplicate joint names {list(msg.joint_names)[:20]}"
        )
    missing = [n for n in names if n not in index]
    if missing:
        raise BagImportError(f"joint trajectory lacks joints {missing}")
    last = msg.points[-1].positions
    if len(last) != len(msg.joint_names):
        raise BagImportError(
            f"joint trajectory point has {len(last)} positions for {len(msg.joint_names)} joints"
        )
    q = np.array([last[index[n]] for n in names], np.float64)
    return q if np.all(np.isfinite(q)) else None  # a non-finite command is dropped


class _Series:
    """A boolean signal from (time, value) samples: its value at any time (False before the
    first sample)."""

    def __init__(self, samples: list[tuple[float, bool]]) -> None:
        samples = sorted(samples, key=lambda x: x[0])
        self.t = [t for t, _ in samples]
        self.v = [v for _, v in samples]

    def at(self, t: float) -> bool:
        i = bisect_right(self.t, t) - 1
        return self.v[i] if i >= 0 else False


def _scenes(steps: list[tuple]) -> list[list[tuple]]:
    """Steps split where the scene index (their last field) changes."""
    out: list[list[tuple]] = []
    for s in steps:
        if not out or out[-1][-1][-1] != s[-1]:
            out.append([])
        out[-1].append(s)
    return out


def _episode(chunk, kin: ArmKinematics, cfg: ImportConfig, bag: Path, topics: BagTopics):
    q = np.array([s[2] for s in chunk])  # [T+1, 6]
    tool = np.array([kin.tool_position(qi) for qi in q])  # [T+1, 3]
    actions = []
    for i in range(len(chunk) - 1):
        cmd = chunk[i][4]
        target = kin.tool_position(cmd) if cmd is not None else tool[i + 1]
        delta = np.clip((target - tool[i]) / cfg.max_tool_step, -1, 1)
        actions.append([*delta, 1.0 if chunk[i][5] else -1.0])
    return Episode(
        obs={
            "image": np.stack([s[1] for s in chunk]),  # [T+1, H, W, 3]
            "joint_pos": q.astype(np.float32),
            "joint_vel": np.array([s[3] for s in chunk], np.float32),
            "suction": np.array([[float(s[5])] for s in chunk], np.float32),
        }
        | (
            {"suction_held": np.array([[float(s[6])] for s in chunk], np.float32)}
            if chunk[0][6] is not None
            else {}
        ),
        action=np.asarray(actions, np.float32),
        meta={
            "source": "rosbag2",
            "bag": str(bag),
            "topics": topics.__dict__,
            "t0": chunk[0][0],
            "t1": chunk[-1][0],
            "action_source": "command" if any(s[4] is not None for s in chunk) else "realised",
        },
        labels={"tool_pos": tool.astype(np.float32)},  # from FK of measured joints
    )
