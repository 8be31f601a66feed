// Synchronised playback: one master clock drives every <video> of a view, and one control row
// (play/pause, loop, scrub, time) drives the clock.
//
// The master clock is wall time (performance.now) while playing, not any one video, so a stalled
// or broken clip never stops the others. Every TICK_MS, and on each video's `timeupdate`, a video
// more than `tolerance` seconds away from the master time is re-seeked to it (at most once per
// SEEK_COOLDOWN_MS while playing, so a slow machine does not seek in a loop). Clips of different
// lengths: the master runs to the longest duration; a shorter clip holds its last frame (clamp)
// until the master loops back to 0 (loop on) or stops at the end (loop off).
//
// Shared by compare.js, ab.js and report.js (concatenated into one module by views/assets.py).

const TICK_MS = 100;
const END_EPS = 0.05; // seconds before a clip's end where it is held (avoids `ended` races)
const PAUSED_TOLERANCE = 0.04; // paused videos are kept frame-accurate
const SEEK_COOLDOWN_MS = 750; // after a drift correction, give a slow decoder time before the next one

export function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export class SyncClock {
  constructor({ tolerance = 0.15, loop = true } = {}) {
    this.tolerance = tolerance;
    this.loop = loop;
    this.playing = false;
    this.videos = new Set();
    this._listeners = [];
    this._seekedAt = new WeakMap(); // video → performance.now() of its last correction
    this._known = new WeakSet(); // videos whose listeners are set
    this._base = 0; // master time (s) at _anchor
    this._anchor = 0; // performance.now() when _base was taken
    this._timer = setInterval(() => this._tick(), TICK_MS);
  }

  get time() {
    return this.playing ? this._base + (performance.now() - this._anchor) / 1000 : this._base;
  }

  get duration() {
    let longest = 0;
    for (const v of this.videos) if (Number.isFinite(v.duration)) longest = Math.max(longest, v.duration);
    return longest;
  }

  on(listener) {
    this._listeners.push(listener);
  }

  // Drive `video` from this clock (again, after a redraw re-inserted a cached video: listeners once).
  add(video) {
    if (!this._known.has(video)) {
      this._known.add(video);
      video.muted = true;
      video.playsInline = true;
      video.preload = "auto";
      video.controls = false;
      video.loop = false; // the clock loops, never the element
      video.addEventListener("loadedmetadata", () => {
        if (!this.videos.has(video)) return;
        this._align(video, this.time, true);
        this._emit();
      });
      video.addEventListener("timeupdate", () => {
        if (this.videos.has(video)) this._align(video, this.time);
      });
    }
    this.videos.add(video);
    if (video.readyState >= 1) this._align(video, this.time, true);
  }

  remove(video) {
    video.pause();
    this.videos.delete(video);
  }

  // Keep only the videos in `keep` (e.g. those still on the page after a redraw).
  retain(keep) {
    for (const v of [...this.videos]) if (!keep.has(v)) this.remove(v);
  }

  clear() {
    for (const v of this.videos) v.pause();
    this.videos.clear();
  }

  play() {
    if (this.playing) return;
    const d = this.duration;
    if (d > 0 && this._base >= d - END_EPS) this._base = 0;
    this._anchor = performance.now();
    this.playing = true;
    this._alignAll(true);
    this._emit();
  }

  pause() {
    if (!this.playing) return;
    this._base = this.time;
    this.playing = false;
    this._alignAll();
    this._emit();
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  seek(t) {
    const d = this.duration;
    this._base = Math.max(0, d > 0 ? Math.min(t, d) : t);
    this._anchor = performance.now();
    this._alignAll(true);
    this._emit();
  }

  setLoop(on) {
    this.loop = Boolean(on);
    this._emit();
  }

  destroy() {
    clearInterval(this._timer);
    this.clear();
    this._listeners = [];
  }

  _tick() {
    if (!this.playing) return;
    const d = this.duration;
    if (d > 0 && this.time >= d) {
      if (this.loop) {
        this._base = this.time % d;
        this._anchor = performance.now();
        this._alignAll(true);
      } else {
        this._base = d;
        this.playing = false;
        this._alignAll();
      }
    } else {
      this._alignAll();
    }
    this._emit();
  }

  _alignAll(force = false) {
    const t = this.time;
    for (const v of this.videos) this._align(v, t, force);
  }

  _align(v, t, force = false) {
    if (v.readyState < 1 || !Number.isFinite(v.duration)) return;
    const end = Math.max(0, v.duration - END_EPS);
    const target = Math.min(t, end);
    const run = this.playing && t < end;
    const tolerance = run ? this.tolerance : PAUSED_TOLERANCE;
    const now = performance.now();
    const cooling = run && now - (this._seekedAt.get(v) || -Infinity) < SEEK_COOLDOWN_MS;
    if (force || (!cooling && Math.abs(v.currentTime - target) > tolerance)) {
      v.currentTime = target;
      this._seekedAt.set(v, now);
    }
    if (run && v.paused) v.play().catch(() => {}); // autoplay refusals: the next tick retries
    if (!run && !v.paused) v.pause();
  }

  _emit() {
    for (const listener of this._listeners) listener(this);
  }
}

const fmt = (s) => (Number.isFinite(s) ? s.toFixed(1) : "0.0");

// The one control row of a view: ▶/❚❚, loop, a scrub bar over the master time, the time.
export function controlRow(clock) {
  const row = h("div", "kl-controls");
  const play = h("button", "kl-play");
  play.type = "button";
  const loopLabel = h("label", "kl-loop");
  const loop = h("input");
  loop.type = "checkbox";
  loopLabel.append(loop, " loop");
  const scrub = h("input", "kl-scrub");
  Object.assign(scrub, { type: "range", min: "0", max: "0", step: "0.01", value: "0" });
  scrub.setAttribute("aria-label", "scrub all videos");
  const time = h("span", "kl-time");
  let dragging = false;
  play.addEventListener("click", () => clock.toggle());
  loop.addEventListener("change", () => clock.setLoop(loop.checked));
  scrub.addEventListener("input", () => {
    dragging = true;
    clock.seek(Number(scrub.value));
  });
  scrub.addEventListener("change", () => {
    dragging = false;
  });
  const update = () => {
    play.textContent = clock.playing ? "❚❚ pause" : "▶ play";
    play.setAttribute("aria-pressed", String(clock.playing));
    loop.checked = clock.loop;
    const d = clock.duration;
    scrub.max = d.toFixed(2);
    if (!dragging) scrub.value = String(Math.min(clock.time, d));
    time.textContent = `${fmt(Math.min(clock.time, d || clock.time))} / ${fmt(d)} s`;
  };
  clock.on(update);
  update();
  row.append(play, loopLabel, scrub, time);
  return row;
}

// Keep the clock and a widget model's `playing` / `loop` / `tolerance` traits in step, and obey
// {type: "seek", t} messages from Python.
export function bindClock(clock, model) {
  clock.on((c) => {
    let dirty = false;
    for (const [name, value] of [["playing", c.playing], ["loop", c.loop]]) {
      if (model.get(name) !== value) {
        model.set(name, value);
        dirty = true;
      }
    }
    if (dirty) model.save_changes();
  });
  model.on("change:playing", () => (model.get("playing") ? clock.play() : clock.pause()));
  model.on("change:loop", () => clock.setLoop(model.get("loop")));
  model.on("change:tolerance", () => {
    clock.tolerance = model.get("tolerance");
  });
  model.on("msg:custom", (msg) => {
    if (msg && msg.type === "seek") clock.seek(Number(msg.t) || 0);
  });
}

// Resolve a media URL against Jupyter's /files/ route when the view says so (source="files").
export function mediaUrl(url, base) {
  if (!url || base !== "jupyter-files") return url;
  let root = document.body?.dataset?.baseUrl || "/";
  const config = document.getElementById("jupyter-config-data");
  if (config) {
    try {
      root = JSON.parse(config.textContent).baseUrl || root;
    } catch (e) {
      /* keep the fallback */
    }
  }
  return `${root.endsWith("/") ? root : root + "/"}files/${url}`;
}

export function makeVideo(clock, src, poster, onError, onClick) {
  const video = h("video", "kl-video");
  if (poster) video.poster = poster;
  video.addEventListener("error", () => onError(video));
  video.addEventListener("click", onClick || (() => clock.toggle()));
  clock.add(video);
  video.src = src;
  return video;
}

// Why a video did not load, in words a user can act on. `kind` is the view's source ("server",
// "files", "embed", "relative"). A loopback-server URL that no longer answers (or answers 404) means
// the kernel that served it is gone: a reopened notebook shows saved views whose server died with
// their kernel. Resolves to {stale, text}.
export const STALE_TEXT =
  "These videos were served by the Python kernel that drew this view, and that kernel is gone " +
  "(the notebook was reopened or the kernel restarted): re-run this cell to see them.";

export async function explainFailure(src, kind) {
  if (kind === "server" && src && src.startsWith("http")) {
    try {
      const response = await fetch(src, { method: "HEAD", cache: "no-store" });
      if (response.ok) return { stale: false, text: "the browser could not play this video" };
    } catch (e) {
      /* connection refused, or a 404 without CORS headers: the kernel's server is gone */
    }
    return { stale: true, text: "not loaded: re-run the cell" };
  }
  if (kind === "files" && src) {
    try {
      const response = await fetch(src, { method: "HEAD", cache: "no-store" });
      if (response.status === 404 || response.status === 403) {
        return {
          stale: false,
          text: "Jupyter's /files/ route has no such file: is the store inside the Jupyter root? " +
            "Pass files_root= or use source='server'.",
        };
      }
    } catch (e) {
      /* fall through */
    }
  }
  return { stale: false, text: "the browser could not load this video" };
}

// Show the explanation of a failed video once per view: a flag on the card, and a banner on the
// view when the kernel is gone.
export function reportFailure(video, src, kind, flagHost, banner) {
  explainFailure(src, kind).then(({ stale, text }) => {
    if (!flagHost.querySelector(":scope > .kl-flag")) flagHost.append(h("div", "kl-flag", text));
    if (stale && banner) {
      banner.textContent = STALE_TEXT;
      banner.hidden = false;
    }
  });
}
