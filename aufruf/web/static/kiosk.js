/* aufruf kiosk: the touch screen at the entrance (/kiosk/{L}).
 *
 * The pages work without this script; it adds what a shared screen needs:
 * - after data-idle-seconds (30) without a touch or key it returns to the start screen in the
 *   device's own language (the attribute is read each time, so it can be changed live);
 * - a form is sent once, however often a tile is tapped;
 * - a barcode or QR scanner that "types" the booking code followed by Enter reaches the code
 *   field even when nothing has the focus;
 * - a tap into the code field opens on-screen keys for the code's characters (a touch screen
 *   has no keyboard); a hardware keyboard or scanner still types as before.
 * No dependencies.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-kiosk-start]");
  if (!root) return;
  var startUrl = root.getAttribute("data-kiosk-start");
  var home = root.hasAttribute("data-kiosk-home");
  var scannerField = document.querySelector("[data-scanner-target]");
  var loadedAt = Date.now();
  var REFRESH_HOME_MS = 5 * 60 * 1000; // the start screen reloads now and then (opening hours)
  var timer = null;

  function idleMs() {
    var seconds = parseFloat(root.getAttribute("data-idle-seconds"));
    return (isFinite(seconds) && seconds > 0 ? seconds : 30) * 1000;
  }

  function untouchedHome() {
    return home && (!scannerField || scannerField.value === "");
  }

  function onIdle() {
    if (untouchedHome() && Date.now() - loadedAt < REFRESH_HOME_MS) {
      arm();
      return;
    }
    window.location.replace(startUrl);
  }

  function arm() {
    window.clearTimeout(timer);
    timer = window.setTimeout(onIdle, idleMs());
  }

  ["pointerdown", "touchstart", "keydown", "input", "wheel"].forEach(function (kind) {
    document.addEventListener(kind, arm, { passive: true, capture: true });
  });
  arm();

  Array.prototype.forEach.call(document.querySelectorAll("form[data-once]"), function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent")) {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
      form.setAttribute("aria-busy", "true");
    });
  });

  var keypad = document.getElementById("keypad");
  if (scannerField && keypad) {
    scannerField.setAttribute("inputmode", "none"); // no second keyboard from the system
    scannerField.addEventListener("focus", function () {
      if (!keypad.hidden) return;
      keypad.hidden = false;
      keypad.scrollIntoView({ block: "nearest" });
    });
    keypad.addEventListener("pointerdown", function (event) {
      event.preventDefault(); // the code field keeps the focus
    });
    keypad.addEventListener("click", function (event) {
      var key = event.target.closest("button");
      if (!key) return;
      var value = scannerField.value;
      scannerField.value = key.hasAttribute("data-erase")
        ? value.slice(0, -1)
        : value + key.getAttribute("data-key");
      scannerField.focus();
    });
  }

  if (scannerField) {
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA");
      if (typing || event.ctrlKey || event.altKey || event.metaKey) return;
      if (event.key && event.key.length === 1 && /[0-9A-Za-z]/.test(event.key)) {
        scannerField.focus(); // the key itself then goes into the field
      }
    }, true);
  }
})();
