// Entry of the static HTML report (bundled after synced_playback.js and grid.js): the same grid as the
// widget, driven by a local stand-in for the widget model whose state is the page's JSON.

function localModel(state) {
  const handlers = {};
  return {
    get: (name) => state[name],
    set(name, value) {
      if (JSON.stringify(state[name]) === JSON.stringify(value)) return; // like Backbone: no change, no event
      state[name] = value;
      for (const fn of handlers[`change:${name}`] || []) fn();
    },
    on(event, fn) {
      (handlers[event] = handlers[event] || []).push(fn);
    },
    save_changes() {},
  };
}

for (const node of document.querySelectorAll("[data-kl-grid]")) {
  const state = JSON.parse(document.getElementById(node.dataset.klGrid).textContent);
  renderGrid(node, localModel(state));
}
