// anywidget entry of the compare grid (bundled after synced_playback.js and grid.js).
export default {
  render({ model, el }) {
    return renderGrid(el, model);
  },
};
