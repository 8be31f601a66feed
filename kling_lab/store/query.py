"""SQL over a store's run log, votes and judgements with DuckDB, reading the parquet files in place.

Three views are defined: ``runs`` (one row per run_id, newest revision), ``votes`` (one row per
vote_id) and ``judgements`` (one row per judgement_id; scores in ``scores_json``, e.g.
``json_extract(scores_json, '$.prompt_adherence')``), each a lazily scanned Arrow dataset over the
store's files (local or remote), so DuckDB reads only the columns and row groups a query needs::

    kling_lab.query("select experiment, sum(cost_usd) usd from runs group by 1 order by 2 desc")

Sandboxed by default: the store's files are read by Arrow, and DuckDB itself gets no file system
or network at all (``enable_external_access = false``, then ``lock_configuration = true`` so SQL
cannot turn it back on): ``read_text('/etc/passwd')``, ``COPY … TO``, ``ATTACH`` and ``INSTALL``
are refused. ``allow_file_access=True`` (``kling-lab query --allow-file-access``) gives DuckDB the
process's full file access back, for SQL you trust (exporting with ``COPY``, joining a CSV).

An error in the SQL is one line (:class:`~kling_lab.errors.InvalidInput`). A read that fails
because a concurrent compaction replaced a file is retried, but only when the store's file list
did change meanwhile; otherwise the error is the query's own and is reported at once.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from kling_lab.errors import InvalidInput
from kling_lab.store.judgements import DATASET as JUDGEMENTS
from kling_lab.store.judgements import SCHEMA as JUDGEMENT_SCHEMA
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


def connect(store: RunStore | str | os.PathLike[str] | None = None, *, allow_file_access: bool = False) -> Any:
    """A DuckDB connection with the ``runs``, ``votes`` and ``judgements`` views of ``store`` defined.

    Unless ``allow_file_access``, DuckDB has no file system or network access (see the module
    docstring); the views still read every row of the store."""
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
    judged = arrow_dataset(store, JUDGEMENTS, JUDGEMENT_SCHEMA)
    con.register("judgements_raw", judged if judged is not None else JUDGEMENT_SCHEMA.empty_table())
    con.execute(
        "create view judgements as select * exclude (_rank) from (select *, row_number() over "
        "(partition by judgement_id) as _rank from judgements_raw) where _rank = 1"
    )
    if not allow_file_access:
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    return con


def _listing(store: RunStore) -> tuple[list[str], ...]:
    return tuple(store.dataset_files(name) for name in ("runs", "votes", JUDGEMENTS))


def _one_line(exc: BaseException) -> InvalidInput:
    return InvalidInput(f"SQL: {' '.join(str(exc).split())}")


def query(sql: str, store: RunStore | str | os.PathLike[str] | None = None, *, allow_file_access: bool = False):
    """Run ``sql`` over the store's ``runs``, ``votes`` and ``judgements`` views; return a pandas DataFrame.

    DuckDB may read nothing but the store unless ``allow_file_access=True`` (see the module
    docstring). Errors in the SQL raise :class:`~kling_lab.errors.InvalidInput` with one line."""
    import duckdb

    store = RunStore.coerce(store)
    if not sql.strip().strip(";").strip():
        raise InvalidInput("SQL: no SQL statement given")
    last: Exception | None = None
    for _ in range(RETRIES):
        listed = _listing(store)
        con = connect(store, allow_file_access=allow_file_access)
        try:
            result = con.execute(sql)
            if result is None:  # only comments
                raise InvalidInput("SQL: no SQL statement given")
            return result.df()
        except (duckdb.IOException, duckdb.InvalidInputException, OSError) as exc:
            if _listing(store) == listed:
                raise _one_line(exc) from None  # the files did not change: the SQL itself failed
            last = exc  # a file replaced by a concurrent compaction: list the files again
        except duckdb.Error as exc:
            raise _one_line(exc) from None
        finally:
            con.close()
    raise OSError(f"the store kept changing while being queried: {last}")
