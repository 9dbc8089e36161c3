// Shows, while typing, which of the password rules the browser can check are met.
// The server checks all rules again (and those the browser cannot: personal data,
// blocklist, history); this only helps the user.
(function () {
  "use strict";
  var fresh = document.getElementById("new");
  var repeat = document.getElementById("repeat");
  if (!fresh || !repeat) { return; }
  var min = parseInt(fresh.getAttribute("data-min-length") || "12", 10);
  var max = parseInt(fresh.getAttribute("data-max-length") || "64", 10);
  function classes(value) {
    var found = 0;
    if (/\p{Ll}/u.test(value)) { found += 1; }
    if (/\p{Lu}/u.test(value)) { found += 1; }
    if (/\p{Nd}/u.test(value)) { found += 1; }
    if (/[^\p{L}\p{Nd}]/u.test(value)) { found += 1; }
    return found;
  }
  function mark(rule, ok) {
    var item = document.querySelector('[data-rule="' + rule + '"]');
    if (!item) { return; }
    item.classList.toggle("met", ok);
    item.classList.toggle("missing", !ok);
  }
  function update() {
    var value = fresh.value;
    var length = Array.from(value).length;
    mark("length", length >= min && length <= max);
    mark("classes", classes(value) >= 3);
    mark("match", value.length > 0 && value === repeat.value);
  }
  fresh.addEventListener("input", update);
  repeat.addEventListener("input", update);
})();
