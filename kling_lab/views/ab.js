// anywidget entry of the blind A/B vote (bundled after synced_playback.js).
//
// Traits read: pair ({index, left: {src, poster}, right: {...}, prompt, facts}; empty when done),
// progress ({done, total, earlier}), last (the previous vote, revealed), message, by, base,
// playing, loop, tolerance. A vote is a custom message {type: "vote", choice, index}; Python
// records it and sends the next pair. Arm labels never reach the page before the vote.

const CHOICES = [
  ["left", "← left is better", "ArrowLeft"],
  ["right", "→ right is better", "ArrowRight"],
  ["tie", "↓ tie", "ArrowDown"],
  ["both_bad", "b both bad", "b"],
];

function side(name, info, base, clock) {
  const node = h("div", "kl-card kl-side");
  node.append(h("div", "kl-title", name));
  if (!info.src) {
    node.append(h("div", "kl-empty", info.missing || "no video"));
    return node;
  }
  const media = h("div", "kl-media");
  media.append(makeVideo(clock, mediaUrl(info.src, base), mediaUrl(info.poster, base), () => {
    node.append(h("div", "kl-flag", "the browser could not load this video"));
  }));
  node.append(media);
  return node;
}

function lastText(last) {
  if (!last || !last.choice) return "";
  return `last vote: ${last.choice.replace("_", " ")} — left was ${last.left_arm}, right was ${last.right_arm}`;
}

export default {
  render({ model, el }) {
    const clock = new SyncClock({ tolerance: model.get("tolerance"), loop: model.get("loop") });
    const root = h("div", "kl-view kl-ab");
    root.tabIndex = 0;
    const head = h("div", "kl-head");
    const prompt = h("div", "kl-prompt kl-shared");
    const facts = h("div", "kl-fact");
    const pairBox = h("div", "kl-pair");
    const buttons = h("div", "kl-votes");
    const vote = (choice) => {
      const pair = model.get("pair");
      if (pair && pair.left) model.send({ type: "vote", choice, index: pair.index });
    };
    for (const [choice, text] of CHOICES) {
      const b = h("button", `kl-vote kl-vote-${choice}`, text);
      b.type = "button";
      b.dataset.choice = choice;
      b.addEventListener("click", () => vote(choice));
      buttons.append(b);
    }
    const keys = h("div", "kl-help",
      "keys (click the widget first): ← left · → right · ↓ tie · b both bad · space play/pause");
    const last = h("div", "kl-last");
    const message = h("div", "kl-message");
    root.append(head, prompt, facts, pairBox, controlRow(clock), buttons, keys, last, message);
    el.append(root);

    const drawText = () => {
      const pair = model.get("pair") || {};
      const p = model.get("progress") || {};
      const count = `${p.done || 0} / ${p.total || 0} voted`;
      head.textContent = `Blind A/B on ${model.get("by")}: which video is better? · ${count}`;
      prompt.textContent = pair.prompt ? `prompt: ${pair.prompt}` : "";
      facts.textContent = pair.facts || "";
      last.textContent = lastText(model.get("last"));
      message.textContent = model.get("message") || "";
    };
    const drawPair = () => {
      const pair = model.get("pair") || {};
      clock.clear(); // a playing clock keeps playing: the new pair starts from 0
      pairBox.replaceChildren();
      if (pair.left) {
        const base = model.get("base");
        pairBox.append(side("left", pair.left, base, clock), side("right", pair.right, base, clock));
      }
      for (const b of buttons.querySelectorAll("button")) b.disabled = !pair.left;
      clock.seek(0);
      drawText();
    };
    root.addEventListener("keydown", (event) => {
      if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
      const hit = CHOICES.find(([, , key]) => key === event.key || key === event.key.toLowerCase());
      if (hit) vote(hit[0]);
      else if (event.key === " ") clock.toggle();
      else return;
      event.preventDefault();
    });
    root.addEventListener("click", () => root.focus({ preventScroll: true }));
    bindClock(clock, model);
    model.on("change:pair", drawPair);
    for (const name of ["progress", "last", "message"]) model.on(`change:${name}`, drawText);
    drawPair();
    if (model.get("playing")) clock.play();
    return () => clock.destroy();
  },
};
