from wm_core.bench.sim import bench_sim


def test_bench_sim_reports_rates_and_ratios():
    r = bench_sim(physics_steps=500, frames=5, env_steps=30)
    for key in (
        "physics_steps_per_s",
        "physics_realtime_factor",
        "render_fps_128",
        "env_steps_per_s",
        "env_step_over_raw_physics_ratio",
    ):
        assert r[key] > 0, key
    assert r["physics_realtime_factor"] == round(r["physics_steps_per_s"] * 0.002, 1)
    assert set(r["targets_met"]) == {"physics_realtime_factor", "render_fps_128"}
