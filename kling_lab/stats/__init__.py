"""Statistics over the run log and votes: effect (permutation test), win rates (Bradley–Terry)."""
