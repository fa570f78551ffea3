// Shows whether a live (SSE) view is connected, so a projector never shows a stale board
// without saying so. Works with htmx's SSE extension; elements: [data-live-status].
(function () {
  var states = { "htmx:sseOpen": ["live", "open"], "htmx:sseError": ["connection lost, reconnecting…", "error"], "htmx:sseClose": ["disconnected", "error"] };
  Object.keys(states).forEach(function (name) {
    document.addEventListener(name, function () {
      document.querySelectorAll("[data-live-status]").forEach(function (el) { el.textContent = states[name][0]; el.dataset.state = states[name][1]; });
    });
  });
})();

// The projector board ([data-pages]) shows as many rows as the screen holds and turns to the
// next page of rows every 10 s; a live swap of the table keeps the page it is on.
(function () {
  var board = document.querySelector("[data-pages]");
  if (!board) return;
  var page = 0;
  function layout() {
    var rows = board.querySelectorAll("tbody tr");
    rows.forEach(function (row) { row.hidden = false; });
    var pages = 1;
    if (rows.length) {
      var room = window.innerHeight - rows[0].getBoundingClientRect().top;
      var perPage = Math.max(1, Math.floor(room / rows[0].getBoundingClientRect().height));
      pages = Math.ceil(rows.length / perPage);
      page %= pages;
      rows.forEach(function (row, i) { row.hidden = Math.floor(i / perPage) !== page; });
    }
    document.querySelectorAll("[data-page-status]").forEach(function (el) {
      el.textContent = pages > 1 ? "page " + (page + 1) + " of " + pages : "";
    });
  }
  new MutationObserver(layout).observe(board, { childList: true });
  window.addEventListener("resize", layout);
  setInterval(function () { page += 1; layout(); }, 10000);
  layout();
})();
