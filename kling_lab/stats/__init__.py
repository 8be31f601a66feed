"""Statistics over the run log and votes: effect (permutation test), win rates (Bradley–Terry), and the
spend-half tools: a race's bounds and decisions (``bounds``, ``race_rule``), sample sizes (``power``),
``plan`` (kl.plan) and adaptive A/B pairing (``adaptive_pairs``)."""
