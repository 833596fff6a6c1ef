import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "0")

# shared test helpers (fuzzlib) importable from every test directory
sys.path.insert(0, str(Path(__file__).resolve().parent))
