// The wallet page's top-up form: the total of the chosen ZNC amount in the chosen currency, live.
// Priced like wallet.currencies.quote (amount × price of 1 ZNC, ROUND_HALF_UP to the minor unit) in whole
// numbers, so no float rounding differs from the server's; formatted by Intl for the page's language,
// which writes what Babel writes on the server (wallet.formatting).
(function () {
  "use strict";
  var form = document.querySelector("form.topup");
  var data = document.getElementById("topup-rates");
  if (!form || !data) return;
  var rates = JSON.parse(data.textContent);
  var input = document.getElementById("id_amount");
  var total = document.getElementById("topup-total");
  var rateLabel = document.getElementById("topup-rate");
  var language = document.documentElement.lang || "en";

  // "0.110000" → {digits: 110000, scale: 6}; null for anything that is not a plain non-negative decimal.
  function decimal(text) {
    var match = /^\s*(\d*)(?:[.,](\d*))?\s*$/.exec(String(text));
    if (!match || (match[1] + (match[2] || "")) === "") return null;
    var fraction = match[2] || "";
    return { digits: parseInt((match[1] || "0") + fraction, 10), scale: fraction.length };
  }

  function quote(amountText, rate) {
    var amount = decimal(amountText), price = decimal(rate.price);
    if (!amount || !price || amount.digits <= 0 || amount.scale > 2) return null;
    var scale = amount.scale + price.scale, product = amount.digits * price.digits;
    if (!Number.isSafeInteger(product)) return null;
    if (scale <= rate.minor) return product * Math.pow(10, rate.minor - scale) / Math.pow(10, rate.minor);
    var divisor = Math.pow(10, scale - rate.minor);
    return Math.floor((product + divisor / 2) / divisor) / Math.pow(10, rate.minor);  // half up
  }

  function format(value, currency, minor) {
    return new Intl.NumberFormat(language, {
      style: "currency", currency: currency, minimumFractionDigits: minor, maximumFractionDigits: minor,
    }).format(value);
  }

  function currency() {
    var picked = form.querySelector("input[name=currency]:checked") || form.querySelector("input[name=currency]");
    return picked ? picked.value : null;
  }

  function show() {
    var code = currency(), rate = rates[code];
    if (!rate) return;
    var value = quote(input.value, rate);
    total.textContent = value === null ? "—" : format(value, code, rate.minor);
    rateLabel.textContent = rate.rate_label;
    form.querySelectorAll("input[name=preset]").forEach(function (radio) {
      var price = radio.parentNode.querySelector("[data-preset-price]"), v = quote(radio.dataset.amount, rate);
      if (price && v !== null) price.textContent = format(v, code, rate.minor);
    });
  }

  form.querySelectorAll("input[name=preset]").forEach(function (radio) {
    radio.addEventListener("change", function () { input.value = radio.dataset.amount; show(); });
  });
  form.querySelectorAll("input[name=currency]").forEach(function (radio) { radio.addEventListener("change", show); });
  input.addEventListener("input", function () {
    form.querySelectorAll("input[name=preset]").forEach(function (r) {
      r.checked = parseFloat(r.dataset.amount) === parseFloat(input.value);
    });
    show();
  });
  show();
})();
