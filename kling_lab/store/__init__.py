"""The run store: parquet datasets (``runs``, ``votes``) and content-addressed videos over a
file layer (local disk or fsspec), with its schema, SQL query, sync, compaction and backfill."""

from kling_lab.store.run_store import STORE_ENV, RunStore, load_runs, rows_frame

__all__ = ["STORE_ENV", "RunStore", "load_runs", "rows_frame"]
