(function () {
  "use strict";
  var d = document, root = d.documentElement;
  var table = d.getElementById("results");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var filter = d.getElementById("filter"), state = d.getElementById("state"), count = d.getElementById("count");

  function apply() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean), want = state.value, shown = 0;
    rows.forEach(function (r, i) {
      var ok = (!want || r.getAttribute("data-state") === want) &&
        words.every(function (w) { return text[i].indexOf(w) >= 0; });
      r.hidden = !ok;
      if (ok) shown++;
    });
    count.textContent = shown + " of " + rows.length + " rows";
  }

  // A cell sorts by its data-k number where it has one (addresses in the
  // page's address order, ports, round trips), else by its text.
  function key(r, c) {
    var cell = r.cells[c], k = cell.getAttribute("data-k");
    return k === null ? cell.textContent.toLowerCase() : Number(k);
  }

  var heads = table.tHead.rows[0].cells;
  function sortBy(c, dir) {
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    heads[c].setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    var order = rows.map(function (r, i) { return { r: r, k: key(r, c), i: i }; });
    order.sort(function (a, b) {
      if (a.k < b.k) return -dir;
      if (a.k > b.k) return dir;
      return a.i - b.i;
    });
    order.forEach(function (o) { body.appendChild(o.r); });
  }
  Array.prototype.forEach.call(heads, function (th, c) {
    var b = d.createElement("button");
    b.type = "button";
    b.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(b);
    b.addEventListener("click", function () {
      sortBy(c, th.getAttribute("aria-sort") === "ascending" ? -1 : 1);
    });
  });

  // A link may carry a view: #q=WORDS&state=STATE&sort=N (column N from 1,
  // -N descending).
  var view = new URLSearchParams(location.hash.slice(1));
  filter.value = view.get("q") || "";
  if (view.get("state")) state.value = view.get("state");
  var col = parseInt(view.get("sort"), 10);
  if (col && Math.abs(col) <= heads.length) sortBy(Math.abs(col) - 1, col > 0 ? 1 : -1);

  filter.addEventListener("input", apply);
  state.addEventListener("change", apply);
  d.getElementById("controls").hidden = false;
  apply();
  root.setAttribute("data-js", "ran");
})();
