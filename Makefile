# The two README commands: `make demo` and `make test`. Both set up .venv on first use.
export MUJOCO_GL ?= egl
export LP_NUM_THREADS ?= 0
VENV := .venv/bin

.PHONY: setup demo test test-slow lint bench clean
setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(VENV)/wm eval --policy oracle --episodes 3 --seed 0 --objects 3 --out out/demo

test: setup
	$(VENV)/ruff check .
	$(VENV)/python -m pytest -q -m "not slow"

test-slow: setup
	$(VENV)/python -m pytest -q -m slow

lint: setup
	$(VENV)/ruff check .

bench: setup
	$(VENV)/wm bench sim --out out/bench

clean:
	rm -rf ros_ws/build ros_ws/install ros_ws/log out
