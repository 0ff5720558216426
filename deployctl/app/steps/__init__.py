"""Steps shared by use cases: each module one step (the rollout, its recovery, waves of clusters, the freeze, drift)."""
