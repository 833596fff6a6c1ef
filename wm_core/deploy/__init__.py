"""Deployment: ONNX export, TensorRT engines, and one inference-backend interface.

- :mod:`wm_core.deploy.onnx_export`: ``wm export --format onnx`` writes ``encoder.onnx``,
  ``predictor.onnx`` and ``proprio.onnx`` (dynamic batch), runs the ONNX checker, checks
  parity against torch through onnxruntime on the CPU and writes ``manifest.json``.
- :mod:`wm_core.deploy.tensorrt`: ``wm export --format tensorrt`` builds FP16 engines from
  those files with the TensorRT Python API, cached by ONNX hash, TensorRT version and GPU.
- :mod:`wm_core.deploy.backends`: ``make_backend("torch" | "onnxruntime" | "tensorrt" |
  "auto", ...)`` gives an object with the world model's verbs (``encode``, ``predict``,
  ``rollout``, ``rollout_proprio``) that the perception and planner nodes and ``wm eval``
  use.

Nothing here imports the simulator (the layering contract in ``pyproject.toml``).
"""
