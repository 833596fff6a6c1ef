"""DDS security (SROS2): which enclave each node gets, and whether this machine's DDS can do it.

On a full ROS 2 install ``scripts/sros2_setup.sh`` makes a keystore with one enclave per node
of the stack (:func:`enclaves`) and permissions in which only ``wm_safety`` may publish the
arm's command topic; the nodes then run with ``ROS_SECURITY_ENABLE=true``,
``ROS_SECURITY_STRATEGY=Enforce``, ``ROS_SECURITY_KEYSTORE=<keystore>`` and
``--ros-args --enclave /wm/<node>`` (the launch argument ``enclaves:=true``; README, "DDS
security"; ``wm_bringup.stack.ENCLAVE_ROOT``).

:func:`probe` asks the RMW in use whether it can secure a participant: a child process creates
one node with ``Enforce`` and an enclave directory holding the six files rcl looks for. The
Fast DDS of the PyPI ``ros-fastdds`` wheel was built without ``-DSECURITY=ON``, and the RMW
refuses the node with "This Fast DDS version doesn't have the security libraries": Enforce
fails closed, and Permissive runs without security. :func:`library_plugins` reads the same
from the library itself (the builtin plugin names are absent from it).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wm_bringup.stack import describe, enclave_of

log = logging.getLogger(__name__)

SECURITY_FILES = (
    "identity_ca.cert.pem",
    "cert.pem",
    "key.pem",
    "permissions_ca.cert.pem",
    "governance.p7s",
    "permissions.p7s",
)
"""What rcl requires in an enclave directory (``ros2 security create_enclave`` writes them)."""
BUILTIN_PLUGINS = ("builtin.PKI-DH", "builtin.AES-GCM-GMAC", "builtin.Access-Permissions")
"""Fast DDS's DDS-Security plugins, by the names a security-enabled library registers."""
NO_SECURITY_MESSAGE = "doesn't have the security libraries"
"""rmw_fastrtps's refusal when Fast DDS was built without security."""

_PROBE = r"""
import sys
import rclpy
ctx = rclpy.Context()
rclpy.init(context=ctx, args=["--ros-args", "--enclave", sys.argv[1]])
try:
    node = rclpy.create_node("wm_security_probe", context=ctx)
except Exception as exc:
    print("REFUSED", exc)
    raise SystemExit(0)
print("CREATED")
node.destroy_node()
ctx.try_shutdown()
"""


def enclaves(profile: str = "sim") -> dict[str, str]:
    """Node name -> enclave, for every node the profile's stack can run (``enclaves:=true``)."""
    stack = describe(profile, arguments={"enclaves": True})
    return {n.name: n.enclave for n in stack.nodes}


@dataclass(frozen=True)
class SecurityProbe:
    supported: bool
    """A participant could be created with Enforce (security libraries present)."""
    rmw: str
    detail: str
    """The RMW's own words (its refusal, or that the node was created)."""
    plugins_in_library: dict[str, bool] | None
    """Builtin plugin names found in the Fast DDS library (None: not Fast DDS / not found)."""
    library: str | None

    @property
    def reason(self) -> str:
        """One line for a report or a skipped test."""
        if self.supported:
            return f"{self.rmw}: a node was created with ROS_SECURITY_STRATEGY=Enforce"
        lib = f" ({self.library})" if self.library else ""
        found = ""
        if self.plugins_in_library is not None:
            missing = [k for k, v in self.plugins_in_library.items() if not v]
            found = f"; plugins absent from the library: {', '.join(missing) or 'none'}"
        return (
            f"{self.rmw}{lib} has no DDS security: with ROS_SECURITY_ENABLE=true and "
            f"ROS_SECURITY_STRATEGY=Enforce the RMW refuses to create a node ({self.detail}){found}"
        )


def fastdds_library() -> Path | None:
    """The Fast DDS shared library the RMW loads (from the loader path or the venv)."""
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    dirs.append(str(Path(sys.prefix) / "lib"))
    for d in dirs:
        hits = sorted(Path(d).glob("libfastdds.so*")) or sorted(Path(d).glob("libfastrtps.so*"))
        if hits:
            return hits[0].resolve()
    return None


def library_plugins(path: Path) -> dict[str, bool]:
    """Which builtin security plugin names occur in the library's bytes."""
    data = path.read_bytes()
    return {name: name.encode() in data for name in BUILTIN_PLUGINS}


def probe(timeout_s: float = 60.0) -> SecurityProbe:
    """Create one node with Enforce and a (placeholder) enclave in a child process; report
    whether the RMW accepted it. Placeholder files suffice to tell the two cases apart: a
    build without security refuses before reading them, a build with security reads them and
    refuses with a certificate error (which this reports as supported: the plugins ran)."""
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp (default)")
    lib = fastdds_library() if "fastrtps" in rmw or "default" in rmw else None
    plugins = library_plugins(lib) if lib is not None else None
    with tempfile.TemporaryDirectory(prefix="wm_keystore_") as ks:
        name = enclave_of("wm_security_probe")
        d = Path(ks) / "enclaves" / name.lstrip("/")
        d.mkdir(parents=True)
        for f in SECURITY_FILES:
            (d / f).write_text("placeholder: not a certificate\n")
        env = dict(os.environ)
        env |= {
            "ROS_SECURITY_ENABLE": "true",
            "ROS_SECURITY_STRATEGY": "Enforce",
            "ROS_SECURITY_KEYSTORE": ks,
        }
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, name],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    out = proc.stdout + proc.stderr
    refused = re.search(r"REFUSED (.*)", proc.stdout)
    if refused and NO_SECURITY_MESSAGE in out:
        line = next(x for x in out.splitlines() if NO_SECURITY_MESSAGE in x)
        detail = line.split("error creating node: ", 1)[-1].strip()
        return SecurityProbe(False, rmw, detail, plugins, str(lib) if lib else None)
    if "CREATED" in proc.stdout:
        # a node under Enforce with placeholder files: security is not being enforced at all
        detail = "node created with placeholder credentials: security NOT enforced"
        return SecurityProbe(False, rmw, detail, plugins, str(lib) if lib else None)
    detail = (refused.group(1) if refused else out.strip().splitlines()[-1:] or ["?"])[0]
    return SecurityProbe(True, rmw, detail.strip(), plugins, str(lib) if lib else None)
