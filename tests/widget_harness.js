// A stand-in for the Jupyter widget manager in the browser tests: runs an anywidget ESM against a
// local model (get/set/on/save_changes/send) and records what the widget sends to the kernel.
window.klSent = [];
window.mountWidget = async (state) => {
  const handlers = {};
  const model = {
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
    send: (msg) => window.klSent.push(msg),
  };
  window.klModel = model;
  window.klDeliver = (msg) => (handlers["msg:custom"] || []).forEach((fn) => fn(msg)); // w.send(...) from Python
  const style = document.createElement("style");
  style.textContent = state._css || "";
  document.head.append(style);
  const url = URL.createObjectURL(new Blob([state._esm], { type: "text/javascript" }));
  const widget = (await import(url)).default;
  const el = document.createElement("div");
  document.body.append(el);
  widget.render({ model, el });
};
