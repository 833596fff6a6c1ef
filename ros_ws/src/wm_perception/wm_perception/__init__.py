"""Camera image to JEPA latent (torch, onnxruntime or TensorRT backends)."""
