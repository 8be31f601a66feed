// anywidget entry of the blind A/B vote (bundled after synced_playback.js).
//
// Traits read: pair ({index, left: {src, poster, aspect}, right: {...}, prompt, facts}; empty when
// done), progress ({done, total, earlier, skipped}), last (the previous vote, revealed), message, by,
// base, source, playing, loop, tolerance. A vote is a custom message {type: "vote", choice, index}, a
// skip {type: "skip", index}; Python records it and sends the next pair. Arm labels never reach
// the page before the vote.

// A vote needs both videos on screen: the buttons and keys stay off until both have loaded a
// frame; a pair with a video that fails can only be skipped (it is offered again next session).
const CHOICES = [
  ["left", "← left is better", "ArrowLeft"],
  ["right", "→ right is better", "ArrowRight"],
  ["tie", "↓ tie", "ArrowDown"],
  ["both_bad", "b both bad", "b"],
];

function side(name, info, base, clock, kind, onLoaded, onFailed, banner) {
  const node = h("div", "kl-card kl-side");
  node.style.setProperty("--kl-aspect", String(info.aspect || 16 / 9));
  node.append(h("div", "kl-title", name));
  const media = h("div", "kl-media");
  node.append(media);
  if (!info.src) {
    media.classList.add("kl-empty");
    media.append(h("div", "kl-empty-text", info.missing || "no video"));
    onFailed();
    return node;
  }
  const src = mediaUrl(info.src, base);
  const video = makeVideo(clock, src, mediaUrl(info.poster, base), () => {
    onFailed();
    reportFailure(video, src, kind, node, banner);
  });
  video.addEventListener("loadeddata", onLoaded, { once: true });
  if (video.readyState >= 2) onLoaded();
  media.append(video);
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
    const state = { loaded: 0, failed: false, index: null };
    const ready = () => state.loaded >= 2 && !state.failed;
    const vote = (choice) => {
      const pair = model.get("pair");
      if (pair && pair.left && ready()) model.send({ type: "vote", choice, index: pair.index });
    };
    const skip = () => {
      const pair = model.get("pair");
      if (pair && pair.left) model.send({ type: "skip", index: pair.index });
    };
    for (const [choice, text] of CHOICES) {
      const b = h("button", `kl-vote kl-vote-${choice}`, text);
      b.type = "button";
      b.dataset.choice = choice;
      b.addEventListener("click", () => vote(choice));
      buttons.append(b);
    }
    const skipButton = h("button", "kl-vote kl-skip", "s skip");
    skipButton.type = "button";
    skipButton.addEventListener("click", skip);
    buttons.append(skipButton);
    const keys = h("div", "kl-help",
      "keys (click the widget first): ← left · → right · ↓ tie · b both bad · s skip · space play/pause");
    const wait = h("div", "kl-flag kl-wait");
    const last = h("div", "kl-last");
    const message = h("div", "kl-message");
    const banner = h("div", "kl-banner");
    banner.hidden = true;
    root.append(banner, head, prompt, facts, pairBox, controlRow(clock), buttons, wait, keys, last, message);
    el.append(root);
    const drawButtons = () => {
      const pair = model.get("pair") || {};
      for (const b of buttons.querySelectorAll("button[data-choice]")) b.disabled = !pair.left || !ready();
      skipButton.disabled = !pair.left;
      wait.textContent = !pair.left ? "" : state.failed
        ? "A video of this pair did not load, so it cannot be judged fairly: skip it (it comes back next session)."
        : ready() ? "" : "waiting for both videos to load…";
    };

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
      const mine = { loaded: 0, failed: false, index: pair.index };
      Object.assign(state, mine);
      const loaded = () => {
        if (state.index === mine.index) state.loaded += 1;
        drawButtons();
      };
      const failed = () => {
        if (state.index === mine.index) state.failed = true;
        drawButtons();
      };
      if (pair.left) {
        const base = model.get("base");
        const kind = model.get("source");
        pairBox.append(
          side("left", pair.left, base, clock, kind, loaded, failed, banner),
          side("right", pair.right, base, clock, kind, loaded, failed, banner),
        );
      }
      drawButtons();
      clock.seek(0);
      drawText();
    };
    root.addEventListener("keydown", (event) => {
      if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
      const hit = CHOICES.find(([, , key]) => key === event.key || key === event.key.toLowerCase());
      if (hit) vote(hit[0]);
      else if (event.key.toLowerCase() === "s") skip();
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
