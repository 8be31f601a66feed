"""``kl.query(sql, store=…)``, as the README promises."""

import kling_lab as kl


def test_kl_query_counts_a_real_sweeps_rows(emulator, tmp_path):
    store = tmp_path / "store"
    kl.run(kl.Sweep.grid("q", prompt="a red kite over a beach", cfg_scale=[0.2, 0.8]), store=store, progress=False)
    assert int(kl.query("select count(*) as n from runs", store=store)["n"][0]) == 2
    assert kl.query("select status from runs", store=kl.RunStore(store))["status"].tolist() == ["ok", "ok"]
