// The review desk's keyboard: 1/2/3 give a verdict, j/k move through the queue, Enter opens a queue row.
// Served by orderguard itself (no CDN); no inline script, so the page's Content-Security-Policy stays strict.
(function () {
  "use strict";
  var desk = document.querySelector(".desk");
  if (!desk) { return; }
  function typing(event) {
    var t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  if (desk.dataset.page === "case") {
    var form = desk.querySelector("form.verdict");
    var query = desk.dataset.query ? "&" + desk.dataset.query : "";
    var move = function (step) {
      window.location.href = "/desk/next?after=" + encodeURIComponent(desk.dataset.key) + "&step=" + step + query;
    };
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) { return; }
      if (typing(event)) {
        if (event.key === "Escape") { event.target.blur(); }
        return;
      }
      var button = form && form.querySelector('button[data-key="' + event.key + '"]');
      if (button && !button.disabled) {
        event.preventDefault();
        button.click();
      } else if (event.key === "j") {
        move(1);
      } else if (event.key === "k") {
        move(-1);
      } else if (event.key === "n") {
        event.preventDefault();
        form.querySelector("textarea").focus();
      }
    });
  } else if (desk.dataset.page === "queue") {
    var rows = Array.prototype.slice.call(desk.querySelectorAll("tr[data-href]"));
    var current = -1;
    var select = function (i) {
      if (!rows.length) { return; }
      if (current >= 0) { rows[current].classList.remove("selected"); }
      current = Math.max(0, Math.min(rows.length - 1, i));
      rows[current].classList.add("selected");
      rows[current].scrollIntoView({block: "nearest"});
    };
    document.addEventListener("keydown", function (event) {
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) { return; }
      if (event.key === "j") { select(current + 1); }
      else if (event.key === "k") { select(current - 1); }
      else if (event.key === "Enter" && current >= 0) { window.location.href = rows[current].dataset.href; }
    });
    // the waiting-time clock: each row's wait, advanced every minute without reloading
    var started = Date.now();
    setInterval(function () {
      var extra = Math.floor((Date.now() - started) / 1000);
      desk.querySelectorAll("td.clock").forEach(function (cell) {
        var s = parseInt(cell.dataset.waited, 10) + extra, m = Math.floor(s / 60);
        cell.textContent = m < 60 ? m + " 分钟" : (m < 2880 ? Math.floor(m / 60) + " 小时 " + (m % 60) + " 分"
                                                              : Math.floor(m / 1440) + " 天");
      });
    }, 60000);
  }
})();
