"""The run log's columns and their types: one place, used by the writer and the reader.

Adding a column: append it to ``RUN_COLUMNS`` (old files simply read it as null).
Never change the type of an existing column.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

# (name, arrow type, one-line meaning)
RUN_COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("run_id", pa.string(), "unique id of this log row (one request attempt that reached a terminal state)"),
    ("sweep_id", pa.string(), "id of the sweep run: sweep name + hash of its requests"),
    ("experiment", pa.string(), "the sweep's name"),
    ("sweep_index", pa.int32(), "position of the request in its sweep"),
    ("fingerprint", pa.string(), "hash of endpoint + canonical input + repeat index"),
    ("endpoint", pa.string(), "fal endpoint id"),
    ("backend", pa.string(), "'fal' or 'emulator' (emulator rows are placeholders, not Kling output)"),
    ("request_id", pa.string(), "fal's request id (null when nothing was submitted)"),
    ("prompt", pa.string(), "input: prompt"),
    ("negative_prompt", pa.string(), "input: negative prompt"),
    ("cfg_scale", pa.float64(), "input: cfg_scale"),
    ("aspect_ratio", pa.string(), "input: aspect ratio"),
    ("duration_s", pa.int16(), "input: duration in seconds"),
    ("repeat", pa.int32(), "repeat index (repeats are distinct requests on purpose)"),
    ("status", pa.string(), "ok | failed | cancelled | skipped_budget | skipped_final"),
    ("cache_hit", pa.bool_(), "true when an earlier ok run was reused instead of submitting"),
    ("source_run_id", pa.string(), "for a cache hit: the run whose video is reused"),
    ("error_type", pa.string(), "machine-readable failure type (fal's error_type or kling_lab's)"),
    ("error", pa.string(), "the server's (or client's) error message"),
    ("attempts", pa.int16(), "HTTP attempts kling_lab made to submit this request"),
    ("submitted_at", TS, "when the submit call returned a request id (UTC)"),
    ("started_at", TS, "when inference started (UTC; from metrics.inference_time when given)"),
    ("completed_at", TS, "when the request was seen COMPLETED (UTC)"),
    ("logged_at", TS, "when this row was written (UTC)"),
    ("queue_s", pa.float64(), "seconds waiting in fal's queue"),
    ("inference_s", pa.float64(), "seconds of inference (fal's metrics.inference_time when given)"),
    ("total_s", pa.float64(), "seconds from submit to completion"),
    ("download_s", pa.float64(), "seconds to download the video"),
    ("cost_usd", pa.float64(), "what fal charges for this row: price rule for ok, 0 otherwise and for cache hits"),
    ("video_url", pa.string(), "fal's URL of the video (expires)"),
    ("video_path", pa.string(), "the downloaded video, relative to the store root"),
    ("video_sha256", pa.string(), "sha256 of the video file"),
    ("video_bytes", pa.int64(), "size of the video file"),
    ("width", pa.int32(), "probe: width in pixels"),
    ("height", pa.int32(), "probe: height in pixels"),
    ("fps", pa.float64(), "probe: frames per second"),
    ("frames", pa.int32(), "probe: number of frames"),
    ("video_duration_s", pa.float64(), "probe: duration in seconds"),
    ("codec", pa.string(), "probe: video codec"),
    ("qc_motion", pa.float64(), "QC: mean absolute luma difference between consecutive frames"),
    ("qc_flicker", pa.float64(), "QC: std of frame-to-frame changes of mean luma"),
    ("qc_sharpness", pa.float64(), "QC: mean variance of the Laplacian of luma"),
    ("qc_black_frames", pa.float64(), "QC: fraction of near-black frames"),
    ("qc_frozen_frames", pa.float64(), "QC: fraction of consecutive frames that do not change"),
    ("qc_scene_cuts", pa.float64(), "QC: number of hard cuts"),
    ("notebook", pa.string(), "the notebook that made the run, if any"),
    ("params_json", pa.string(), "extra user tags / notebook parameters as JSON"),
    ("kling_lab_version", pa.string(), "version of kling_lab that wrote the row"),
    ("user", pa.string(), "who ran it: $KLING_LAB_USER, else the login name"),
    (
        "revised_at",
        TS,
        "set when a row is re-written with more facts (e.g. backfilled metrics); the newest revision of a run_id wins",
    ),
    ("model", pa.string(), "the model's alias in the registry (older rows: derived from endpoint when loaded)"),
    ("arguments_json", pa.string(), "the exact input sent to fal (canonical JSON; local images as their fal URL)"),
    ("seed", pa.int64(), "input: seed (models that take one)"),
    ("resolution", pa.string(), "input: resolution (models that take one)"),
    ("generate_audio", pa.bool_(), "input: generate_audio (models that make sound)"),
    ("image_sha256", pa.string(), "image-to-video: sha256 of the start frame (null for a URL given as is)"),
    ("end_image_sha256", pa.string(), "image-to-video: sha256 of the end frame"),
    (
        "adopted",
        pa.bool_(),
        "true for a request found through fal's platform API: a submit whose answer was lost (an orphan)",
    ),
    (
        "fallbacks_disabled",
        pa.bool_(),
        "true when the submit asked fal not to reroute it to a fallback endpoint (x-fal-disable-fallbacks)",
    ),
]

RUN_SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in RUN_COLUMNS])
COLUMN_DOCS = {name: doc for name, _, doc in RUN_COLUMNS}
QC_COLUMNS = [name for name, _, _ in RUN_COLUMNS if name.startswith("qc_")]
PROBE_COLUMNS = ["width", "height", "fps", "frames", "video_duration_s", "codec"]
PARAM_COLUMNS = ["model", "prompt", "negative_prompt", "cfg_scale", "aspect_ratio", "duration_s", "repeat"]
STATUSES = ("ok", "failed", "cancelled", "skipped_budget", "skipped_final")


def pandas_dtype_for(typ: pa.DataType):
    """Map an arrow type to the pandas dtype the DataFrame uses (nullable, typed, no object columns)."""
    import pandas as pd

    if pa.types.is_string(typ):
        return pd.StringDtype("pyarrow")
    if pa.types.is_boolean(typ):
        return pd.BooleanDtype()
    if pa.types.is_integer(typ):
        return {8: pd.Int8Dtype(), 16: pd.Int16Dtype(), 32: pd.Int32Dtype(), 64: pd.Int64Dtype()}[typ.bit_width]
    return None  # floats and timestamps: pandas' own mapping is right
