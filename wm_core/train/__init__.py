"""Training loops for the world model (single process or DDP under torchrun)."""
