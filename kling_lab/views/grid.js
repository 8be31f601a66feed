// The faceted grid of runs (compare widget and static report): filters, sort and range, the control
// row, and one compact card per run. Needs synced_playback.js (bundled before this file).
//
// `model` is an anywidget model or report.js's local stand-in: get/set/on/save_changes.
// Traits read: grid (the spec from views/grid.py), selection, sort, ranges, show_diff, show_details,
// playing, loop, tolerance. Every user text goes in with textContent, never as HTML.
//
// Layout: columns are sized by the aspect ratio of their clips (a 9:16 column is narrower than a
// 16:9 one, so every clip of a row has the same height and no black side bars); each card has one
// title line (only what differs between cells, cut with an ellipsis: titles never push a row out
// of line), the clip, and one meta line (cost, headline metric); the rest folds into "details".
// With a sort, the facets give way to a ranked gallery. Click a clip to enlarge it.
// Live grids: cells whose status is "pending" are placeholders showing the job's state; a redraw
// keeps the cards (and videos) whose data did not change, so playback goes on while clips arrive.

export const ALL = "*";
const MAX_CLIP_PX = 320; // the tallest a clip gets in the facet grid

export function matches(cell, selection) {
  return Object.entries(selection || {}).every(([column, key]) => key === ALL || cell.params[column] === key);
}

function inRanges(cell, ranges) {
  return Object.entries(ranges || {}).every(([column, [low, high]]) => {
    const value = (cell.values || {})[column];
    if (value === undefined || value === null) return false;
    return (low === null || value >= low) && (high === null || value <= high);
  });
}

// The cells a view shows, in order (the same rules as views/grid.py's `visible`).
export function visibleCells(model) {
  const grid = model.get("grid");
  const cells = grid.cells.filter((c) => matches(c, model.get("selection")) && inRanges(c, model.get("ranges")));
  const sort = model.get("sort") || "";
  if (!sort) return cells;
  const column = sort.replace(/^-/, "");
  const sign = sort.startsWith("-") ? -1 : 1;
  const value = (c) => (c.values || {})[column];
  const present = cells.filter((c) => value(c) !== undefined && value(c) !== null);
  present.sort((a, b) => sign * (value(a) - value(b)));
  return present.concat(cells.filter((c) => value(c) === undefined || value(c) === null));
}

function labelled(text, control) {
  const label = h("label", "kl-filter", text);
  label.append(control);
  return label;
}

function toolbar(model, root) {
  const bar = h("div", "kl-filters");
  const grid = model.get("grid");
  for (const spec of grid.filters) {
    const select = h("select");
    select.dataset.column = spec.column;
    if (spec.all) select.append(new Option("all", ALL));
    for (const option of spec.options) select.append(new Option(option.label, option.key));
    select.value = (model.get("selection") || {})[spec.column] ?? ALL;
    select.addEventListener("change", () => {
      model.set("selection", { ...model.get("selection"), [spec.column]: select.value });
      model.save_changes();
    });
    bar.append(labelled(`${spec.column} `, select));
  }
  model.on("change:selection", () => {
    for (const select of bar.querySelectorAll("select[data-column]")) {
      select.value = model.get("selection")[select.dataset.column] ?? ALL;
    }
  });
  if (grid.sortable && grid.sortable.length) {
    const sort = h("select", "kl-sort");
    sort.append(new Option("grid (facets)", ""));
    for (const s of grid.sortable) {
      sort.append(new Option(`${s.label} ↓ (highest first)`, `-${s.column}`));
      sort.append(new Option(`${s.label} ↑ (lowest first)`, s.column));
    }
    sort.value = model.get("sort") || "";
    sort.addEventListener("change", () => {
      model.set("sort", sort.value);
      model.save_changes();
    });
    model.on("change:sort", () => (sort.value = model.get("sort") || ""));
    bar.append(labelled("sort ", sort));
    bar.append(rangeControl(model, grid));
  }
  bar.append(toggle(model, root, "show_details", "kl-show-details", " details"));
  bar.append(toggle(model, root, "show_diff", "kl-show-diff", " prompt diff"));
  return bar;
}

// "keep [metric] from [low] to [high]": one range filter, on the model's `ranges` trait.
function rangeControl(model, grid) {
  const box = h("span", "kl-range");
  const column = h("select", "kl-range-column");
  column.append(new Option("keep all", ""));
  for (const s of grid.sortable) column.append(new Option(s.label, s.column));
  const low = h("input", "kl-range-low");
  const high = h("input", "kl-range-high");
  for (const [input, hint] of [[low, "min"], [high, "max"]]) {
    Object.assign(input, { type: "number", step: "any", placeholder: hint });
    input.setAttribute("aria-label", hint);
  }
  const number = (input) => (input.value === "" ? null : Number(input.value));
  const save = () => {
    const ranges = column.value ? { [column.value]: [number(low), number(high)] } : {};
    if (JSON.stringify(ranges) === JSON.stringify(model.get("ranges") || {})) return; // e.g. a change event on blur
    model.set("ranges", ranges);
    model.save_changes();
  };
  const show = () => {
    const [name, bounds] = Object.entries(model.get("ranges") || {})[0] || ["", [null, null]];
    column.value = name;
    low.value = bounds[0] ?? "";
    high.value = bounds[1] ?? "";
    low.disabled = high.disabled = !name;
  };
  column.addEventListener("change", () => {
    low.disabled = high.disabled = !column.value;
    save();
  });
  for (const input of [low, high]) input.addEventListener("change", save);
  model.on("change:ranges", show);
  show();
  box.append(labelled("filter ", column), low, h("span", "kl-muted", "–"), high);
  return box;
}

function toggle(model, root, trait, className, text) {
  const label = h("label", "kl-toggle");
  const box = h("input");
  box.type = "checkbox";
  box.dataset.trait = trait;
  const apply = () => {
    box.checked = Boolean(model.get(trait));
    root.classList.toggle(className, box.checked);
  };
  box.addEventListener("change", () => {
    model.set(trait, box.checked);
    model.save_changes();
    apply();
  });
  model.on(`change:${trait}`, apply);
  apply();
  label.append(box, text);
  return label;
}

function promptBlock(cell) {
  const block = h("div", "kl-prompts");
  block.append(h("div", "kl-prompt", cell.prompt || "(no prompt)"));
  const diff = h("div", "kl-diff");
  for (const [op, text] of cell.prompt_diff || []) {
    diff.append(h("span", { "=": "kl-same", "+": "kl-add", "-": "kl-del" }[op] || "kl-same", text));
  }
  block.append(diff);
  return block;
}

function details(cell, grid) {
  const box = h("div", "kl-details");
  if (!grid.same_prompt) box.append(promptBlock(cell));
  for (const fact of cell.facts || []) box.append(h("div", "kl-fact", fact));
  if ((cell.metrics || []).length) {
    const metrics = h("div", "kl-metrics");
    for (const [name, value] of cell.metrics) {
      const m = h("span", "kl-metric", `${name} ${value}`);
      m.title = grid.metric_docs[name] || "";
      metrics.append(m);
    }
    box.append(metrics);
  }
  return box;
}

// The text a card shows on hover: everything in its details, one fact per line.
function hoverText(cell) {
  const lines = [cell.title, cell.error, cell.missing, ...(cell.facts || [])];
  lines.push((cell.metrics || []).map(([n, v]) => `${n} ${v}`).join(" · "));
  return lines.filter(Boolean).join("\n");
}

const STATE_TEXT = {
  planned: "planned",
  submitted: "at fal: queued or running",
  queued: "queued",
  running: "running",
  downloading: "downloading",
  cache_hit: "from the cache",
  left_pending: "left pending at fal: resume collects it",
};

function pendingText(cell) {
  let text = STATE_TEXT[cell.state] || cell.state || "pending";
  if (cell.state === "queued" && cell.queue_position !== undefined && cell.queue_position !== null) {
    text += ` · position ${cell.queue_position + 1}`;
  }
  return text + (cell.message ? ` · ${cell.message}` : "");
}

function card(cell, grid, ctx, extraTitle) {
  const node = h("div", `kl-card kl-status-${cell.status}`);
  node.dataset.runId = cell.run_id || "";
  node.dataset.key = cell.key || "";
  node.style.setProperty("--kl-aspect", String(cell.aspect || 16 / 9));
  const titleText = [extraTitle, cell.title].filter(Boolean).join(" · ");
  if (ctx.titled) {
    const title = h("div", "kl-title", titleText || "\u00a0");
    title.title = titleText;
    node.append(title);
  }
  const media = h("div", "kl-media");
  if (cell.status === "pending") {
    media.classList.add("kl-pending", `kl-state-${cell.state || "planned"}`);
    media.append(h("div", "kl-pending-text", pendingText(cell)));
  } else if (cell.src) {
    const src = mediaUrl(cell.src, grid.base);
    const video = makeVideo(
      ctx.clock,
      src,
      mediaUrl(cell.poster, grid.base),
      () => reportFailure(video, src, grid.source, node, ctx.banner),
      () => ctx.enlarge(cell, titleText),
    );
    video.title = "click to enlarge";
    media.append(video);
  } else {
    media.classList.add("kl-empty");
    media.append(h("div", "kl-empty-text", cell.error || cell.missing || "no video"));
  }
  node.append(media);
  const meta = h("div", "kl-meta");
  const sortColumn = (ctx.sort || "").replace(/^-/, "");
  const parts = [cell.meta];
  if (sortColumn && sortColumn !== grid.metric && (cell.values || {})[sortColumn] !== undefined) {
    parts.push(`${ctx.sortLabel} ${Number(cell.values[sortColumn]).toPrecision(3)}`);
  }
  if (cell.status !== "ok" && cell.status !== "pending") parts.unshift(cell.status);
  meta.append(h("span", "kl-meta-text", parts.filter(Boolean).join(" · ") || "\u00a0"));
  const more = h("button", "kl-more", "details");
  more.type = "button";
  more.addEventListener("click", () => node.classList.toggle("kl-open"));
  if (cell.status !== "pending") meta.append(more);
  node.append(meta);
  if (cell.missing) node.append(h("div", "kl-flag", cell.missing));
  if (cell.status !== "pending") node.append(details(cell, grid));
  node.title = hoverText(cell);
  return node;
}

// Reuse the card of a cell whose data did not change (its video keeps playing through a redraw).
function cachedCard(cell, grid, ctx, extraTitle) {
  const signature = JSON.stringify([cell, extraTitle, ctx.titled, ctx.sort]);
  const key = `${cell.key || cell.run_id}|${extraTitle}`;
  const hit = ctx.cards.get(key);
  if (hit && hit.signature === signature) {
    ctx.used.set(key, hit);
    return hit.node;
  }
  const node = card(cell, grid, ctx, extraTitle);
  ctx.used.set(key, { signature, node });
  return node;
}

function columnAspects(grid, cells) {
  return grid.col_values.map((col) => {
    const here = cells.filter((c) => c.col === col.key);
    return here.length ? Math.max(...here.map((c) => c.aspect || 16 / 9)) : 16 / 9;
  });
}

function facetGrid(grid, cells, ctx) {
  const table = h("div", "kl-grid");
  const aspects = columnAspects(grid, cells);
  const head = grid.rows ? "fit-content(9em) " : "";
  table.style.gridTemplateColumns = head + aspects.map((a) => `minmax(0, ${a.toFixed(3)}fr)`).join(" ");
  // Wide pages (the report): no clip taller than MAX_CLIP_PX, so the grid stops growing there.
  const sum = aspects.reduce((x, y) => x + y, 0);
  table.style.maxWidth = `calc(${grid.rows ? "9em + " : ""}${Math.round(sum * MAX_CLIP_PX + 10 * aspects.length)}px + ${aspects.length * 8}px)`;
  if (grid.rows || grid.cols) {
    if (grid.rows) table.append(h("div", "kl-corner", `${grid.rows} ↓${grid.cols ? ` · ${grid.cols} →` : ""}`));
    for (const col of grid.col_values) {
      const head = h("div", "kl-colhead", grid.cols ? col.label : "");
      head.title = grid.cols ? `${grid.cols} = ${col.full ?? col.label}` : "";
      table.append(head);
    }
  }
  for (const row of grid.row_values) {
    if (grid.rows) {
      const head = h("div", "kl-rowhead", row.label);
      head.title = `${grid.rows} = ${row.full ?? row.label}`;
      table.append(head);
    }
    for (const col of grid.col_values) {
      const facet = h("div", "kl-facet");
      const here = cells.filter((c) => c.row === row.key && c.col === col.key);
      if (!here.length) facet.append(h("div", "kl-none", "no run"));
      for (const cell of here) facet.append(cachedCard(cell, grid, ctx, ""));
      table.append(facet);
    }
  }
  return table;
}

function gallery(grid, cells, ctx) {
  const list = h("div", "kl-gallery");
  const facetText = (cell) => {
    const parts = [];
    for (const [axis, values, key] of [[grid.rows, grid.row_values, cell.row], [grid.cols, grid.col_values, cell.col]]) {
      if (!axis) continue;
      const value = values.find((v) => v.key === key);
      parts.push(`${axis}=${value ? value.label : "?"}`);
    }
    return parts.join(" · ");
  };
  cells.forEach((cell, i) => list.append(cachedCard(cell, grid, ctx, `#${i + 1} ${facetText(cell)}`)));
  return list;
}

function drawCells(body, model, ctx) {
  const grid = model.get("grid");
  const resume = ctx.clock.time;
  const cells = visibleCells(model);
  ctx.sort = model.get("sort") || "";
  ctx.sortLabel = ((grid.sortable || []).find((s) => s.column === ctx.sort.replace(/^-/, "")) || {}).label || "";
  ctx.titled = Boolean(ctx.sort) || grid.cells.some((c) => c.title);
  ctx.used = new Map();
  let content;
  if (grid.message || !cells.length) {
    content = h("div", "kl-message", grid.message || "No runs match these filters.");
  } else {
    content = ctx.sort ? gallery(grid, cells, ctx) : facetGrid(grid, cells, ctx);
  }
  body.replaceChildren(content);
  ctx.cards = ctx.used;
  const onPage = new Set(body.querySelectorAll("video"));
  for (const video of onPage) ctx.clock.add(video);
  ctx.clock.retain(onPage);
  if (ctx.lightboxVideo) ctx.clock.add(ctx.lightboxVideo);
  if (!ctx.clock.playing) ctx.clock.seek(resume);
}

// A clip enlarged over the page (click a clip; Escape, ✕ or a click outside closes it). It plays
// on the same clock as the grid.
function lightbox(root, ctx, grid) {
  return (cell, titleText) => {
    const overlay = h("div", "kl-lightbox");
    overlay.tabIndex = 0;
    const frame = h("div", "kl-lightbox-frame");
    const close = h("button", "kl-close", "✕");
    close.type = "button";
    close.setAttribute("aria-label", "close");
    const src = mediaUrl(cell.src, grid.base);
    const video = makeVideo(ctx.clock, src, mediaUrl(cell.poster, grid.base), () => {}, () => ctx.clock.toggle());
    video.classList.add("kl-big");
    ctx.lightboxVideo = video;
    const caption = h("div", "kl-caption", [titleText, cell.meta].filter(Boolean).join(" · "));
    frame.append(close, video, caption, details(cell, grid));
    overlay.append(frame);
    const shut = () => {
      ctx.clock.remove(video);
      ctx.lightboxVideo = null;
      overlay.remove();
    };
    close.addEventListener("click", shut);
    overlay.addEventListener("click", (event) => {
      if (event.target === overlay) shut();
    });
    overlay.addEventListener("keydown", (event) => {
      event.stopPropagation(); // keep JupyterLab's shortcuts out of the enlarged view
      if (event.key === "Escape") shut();
      else if (event.key === " ") {
        event.preventDefault();
        ctx.clock.toggle();
      }
    });
    root.append(overlay);
    overlay.focus({ preventScroll: true });
  };
}

export function renderGrid(el, model) {
  const clock = new SyncClock({ tolerance: model.get("tolerance"), loop: model.get("loop") });
  const root = h("div", "kl-view kl-compare");
  const head = h("div", "kl-head");
  const summary = h("span", "kl-summary");
  const shared = h("div", "kl-prompt kl-shared");
  const banner = h("div", "kl-banner");
  banner.hidden = true;
  head.append(summary, shared);
  const drawHead = () => {
    const grid = model.get("grid");
    summary.textContent = grid.summary;
    shared.textContent = grid.same_prompt && grid.base_prompt
      ? `prompt (the same in every cell): ${grid.base_prompt}`
      : grid.base_prompt ? `prompts differ; "prompt diff" marks each against: ${grid.base_prompt}` : "";
    shared.title = shared.textContent;
  };
  const controls = controlRow(clock);
  const body = h("div", "kl-body");
  root.append(banner, head, toolbar(model, root), controls, body);
  el.append(root);
  const ctx = { clock, banner, cards: new Map(), used: new Map(), lightboxVideo: null };
  ctx.enlarge = (cell, titleText) => lightbox(root, ctx, model.get("grid"))(cell, titleText);
  bindClock(clock, model);
  const redraw = () => drawCells(body, model, ctx);
  drawHead();
  redraw();
  for (const name of ["selection", "sort", "ranges"]) model.on(`change:${name}`, redraw);
  model.on("change:grid", () => {
    drawHead();
    redraw();
  });
  if (model.get("playing")) clock.play();
  return () => clock.destroy();
}
