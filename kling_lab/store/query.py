"""SQL over a store's run log and votes with DuckDB, reading the parquet files in place.

Two views are defined: ``runs`` (one row per run_id, newest revision) and ``votes`` (one row
per vote_id), each a lazily scanned Arrow dataset over the store's files (local or remote), so
DuckDB reads only the columns and row groups a query needs::

    kling_lab.query("select experiment, sum(cost_usd) usd from runs group by 1 order by 2 desc")
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from kling_lab.errors import InvalidInput
from kling_lab.store.run_store import RunStore
from kling_lab.store.schema import RUN_SCHEMA

RETRIES = 5


def arrow_dataset(store: RunStore, name: str, schema: pa.Schema | None = None) -> pads.Dataset | None:
    """A lazily scanned Arrow dataset over ``<store>/<name>/*.parquet`` (None if there are no files)."""
    keys = store.dataset_files(name)
    if not keys:
        return None
    if store.is_remote:
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        files = store.files
        filesystem = PyFileSystem(FSSpecHandler(files.fs))  # type: ignore[union-attr]
        paths = [f"{files.base}/{k}" for k in keys]  # type: ignore[union-attr]
    else:
        filesystem = None
        paths = [str(store.root / k) for k in keys]
    return pads.dataset(paths, schema=schema, format="parquet", filesystem=filesystem)


def connect(store: RunStore | str | os.PathLike[str] | None = None) -> Any:
    """A DuckDB connection with the ``runs`` and ``votes`` views of ``store`` defined."""
    import duckdb

    store = RunStore.coerce(store)
    con = duckdb.connect()
    runs = arrow_dataset(store, "runs", RUN_SCHEMA)
    con.register("runs_raw", runs if runs is not None else RUN_SCHEMA.empty_table())
    con.execute(
        "create view runs as select * exclude (_rank) from ("
        " select *, row_number() over (partition by run_id order by revised_at desc nulls last) as _rank"
        " from runs_raw) where _rank = 1"
    )
    votes = arrow_dataset(store, "votes")
    if votes is not None:
        con.register("votes_raw", votes)
        key = "vote_id" if "vote_id" in votes.schema.names else None
        if key:
            con.execute(
                f"create view votes as select * exclude (_rank) from (select *, row_number() over "
                f"(partition by {key}) as _rank from votes_raw) where _rank = 1"
            )
        else:
            con.execute("create view votes as select * from votes_raw")
    return con


def query(sql: str, store: RunStore | str | os.PathLike[str] | None = None):
    """Run ``sql`` over the store's ``runs`` (and ``votes``) views; return a pandas DataFrame."""
    import duckdb

    last: Exception | None = None
    for _ in range(RETRIES):
        con = connect(store)
        try:
            return con.execute(sql).df()
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as exc:
            raise InvalidInput(f"SQL: {' '.join(str(exc).split())}") from None
        except (duckdb.IOException, duckdb.InvalidInputException, OSError) as exc:
            last = exc  # a file replaced by a concurrent compaction: list the files again
        finally:
            con.close()
    raise OSError(f"the store kept changing while being queried: {last}")
