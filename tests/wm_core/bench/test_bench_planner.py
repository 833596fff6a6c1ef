from wm_core.bench.planner import bench_planner


def test_bench_planner_reports_latency_and_ratios():
    r = bench_planner(repeats=3, only=("cem_small", "mppi_small", "gradient_small"))
    res = r["results"]
    assert set(res) == {"cem_small", "mppi_small", "gradient_small", "cem_default"}
    assert res["cem_default"]["latency_vs_cem_default"] == 1.0
    for name, row in res.items():
        assert row["plan_ms_p50"] > 0 and row["plan_ms_p99"] >= row["plan_ms_p50"], name
        assert row["rollouts_per_s"] > 0 and row["rollouts_per_plan"] > 0, name
    assert res["cem_small"]["rollouts_per_plan"] == 64 * 2
