from wm_core.bench.model import bench_model


def test_bench_model_reports_latency_throughput_and_ratios():
    r = bench_model(iters=6, horizon=2, candidates=(8,))
    cpu = r["cpu"]
    assert cpu["encoder_ms_p50"] > 0 and cpu["encoder_ms_p99"] >= cpu["encoder_ms_p50"]
    assert cpu["rollout_steps_per_s_N8_H2"] > 0 and cpu["train_windows_per_s"] > 0
    assert cpu["encoder_vs_5ms_target_ratio"] == round(cpu["encoder_ms_p50"] / 5.0, 3)
    assert r["latent_grid"] == [64, 32]
    assert "cuda_device" in r or r["cuda"].startswith("skipped")
