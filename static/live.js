// Shows whether a live (SSE) view is connected, so a projector never shows a stale board
// without saying so. Works with htmx's SSE extension; elements: [data-live-status].
(function () {
  function show(text, state) {
    document.querySelectorAll("[data-live-status]").forEach(function (el) {
      el.textContent = text;
      el.dataset.state = state;
    });
  }
  document.addEventListener("htmx:sseOpen", function () { show("live", "open"); });
  document.addEventListener("htmx:sseError", function () { show("connection lost, reconnecting…", "error"); });
  document.addEventListener("htmx:sseClose", function () { show("disconnected", "error"); });
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
