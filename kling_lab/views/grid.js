// The faceted grid of runs (compare widget and static report): filters, the control row, the
// "show prompt diff" toggle and one card per run. Needs synced_playback.js (bundled before this file).
//
// `model` is an anywidget model or report.js's local stand-in: get/set/on/save_changes.
// Traits read: grid (the spec from views/grid.py), selection, show_diff, playing, loop, tolerance.
// Every user text goes in with textContent, never as HTML.

export const ALL = "*";

export function matches(cell, selection) {
  return Object.entries(selection || {}).every(([column, key]) => key === ALL || cell.params[column] === key);
}

function filterBar(model) {
  const bar = h("div", "kl-filters");
  const grid = model.get("grid");
  for (const spec of grid.filters) {
    const label = h("label", "kl-filter", `${spec.column} `);
    const select = h("select");
    select.dataset.column = spec.column;
    if (spec.all) select.append(new Option("all", ALL));
    for (const option of spec.options) select.append(new Option(option.label, option.key));
    select.value = (model.get("selection") || {})[spec.column] ?? ALL;
    select.addEventListener("change", () => {
      model.set("selection", { ...model.get("selection"), [spec.column]: select.value });
      model.save_changes();
    });
    label.append(select);
    bar.append(label);
  }
  model.on("change:selection", () => {
    for (const select of bar.querySelectorAll("select")) {
      select.value = model.get("selection")[select.dataset.column] ?? ALL;
    }
  });
  return bar;
}

function diffToggle(model, root) {
  const label = h("label", "kl-diff-toggle");
  const box = h("input");
  box.type = "checkbox";
  const apply = () => {
    box.checked = Boolean(model.get("show_diff"));
    root.classList.toggle("kl-show-diff", box.checked);
  };
  box.addEventListener("change", () => {
    model.set("show_diff", box.checked);
    model.save_changes();
    apply();
  });
  model.on("change:show_diff", apply);
  apply();
  label.append(box, " show prompt diff");
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

function card(cell, grid, clock) {
  const node = h("div", `kl-card kl-status-${cell.status}`);
  node.dataset.runId = cell.run_id || "";
  node.append(h("div", "kl-title", cell.title));
  if (cell.src) {
    const media = h("div", "kl-media");
    media.append(makeVideo(clock, mediaUrl(cell.src, grid.base), mediaUrl(cell.poster, grid.base), () => {
      node.append(h("div", "kl-flag", "the browser could not load this video"));
    }));
    node.append(media);
  } else {
    node.append(h("div", "kl-empty", cell.error || cell.missing || "no video"));
  }
  if (cell.missing) node.append(h("div", "kl-flag", cell.missing));
  if (!grid.same_prompt) node.append(promptBlock(cell));
  for (const fact of cell.facts) node.append(h("div", "kl-fact", fact));
  if (cell.metrics.length) {
    const metrics = h("div", "kl-metrics");
    for (const [name, value] of cell.metrics) {
      const m = h("span", "kl-metric", `${name} ${value}`);
      m.title = grid.metric_docs[name] || "";
      metrics.append(m);
    }
    node.append(metrics);
  }
  return node;
}

function drawCells(body, model, clock) {
  const grid = model.get("grid");
  const resume = clock.time;
  clock.clear();
  body.replaceChildren();
  const cells = grid.cells.filter((c) => matches(c, model.get("selection")));
  if (grid.message || !cells.length) {
    body.append(h("div", "kl-message", grid.message || "No runs match these filters."));
    return;
  }
  const table = h("div", "kl-grid");
  table.style.gridTemplateColumns = `auto repeat(${grid.col_values.length}, minmax(160px, 1fr))`;
  table.append(h("div", "kl-corner", `${grid.rows ? grid.rows + " ↓ " : ""}${grid.cols ? grid.cols + " →" : ""}`));
  for (const col of grid.col_values) table.append(h("div", "kl-colhead", grid.cols ? `${grid.cols}=${col.label}` : ""));
  for (const row of grid.row_values) {
    table.append(h("div", "kl-rowhead", grid.rows ? `${grid.rows}=${row.label}` : ""));
    for (const col of grid.col_values) {
      const facet = h("div", "kl-facet");
      const here = cells.filter((c) => c.row === row.key && c.col === col.key);
      if (!here.length) facet.append(h("div", "kl-empty kl-none", "no run"));
      for (const cell of here) facet.append(card(cell, grid, clock));
      table.append(facet);
    }
  }
  body.append(table);
  clock.seek(resume);
}

export function renderGrid(el, model) {
  const clock = new SyncClock({ tolerance: model.get("tolerance"), loop: model.get("loop") });
  const root = h("div", "kl-view kl-compare");
  const grid = model.get("grid");
  const head = h("div", "kl-head");
  head.append(h("span", "kl-summary", grid.summary));
  if (grid.same_prompt && grid.base_prompt) {
    head.append(h("div", "kl-prompt kl-shared", `prompt (the same in every cell): ${grid.base_prompt}`));
  }
  else if (grid.base_prompt) head.append(h("div", "kl-base", `diff against: ${grid.base_prompt}`));
  const controls = controlRow(clock);
  controls.append(diffToggle(model, root));
  const body = h("div", "kl-body");
  root.append(head, filterBar(model), controls, body);
  el.append(root);
  bindClock(clock, model);
  drawCells(body, model, clock);
  model.on("change:selection", () => drawCells(body, model, clock));
  if (model.get("playing")) clock.play();
  return () => clock.destroy();
}
