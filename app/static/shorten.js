// The shortening form (POST /shorten through fetch), copy buttons and QR images. No dependencies.
"use strict";

(function () {
  function $(id) {
    return document.getElementById(id);
  }

  // A QR image whose endpoint fails stays out of the way instead of showing a broken image.
  function watchQr(img) {
    img.addEventListener("load", function () { img.hidden = false; });
    img.addEventListener("error", function () { img.hidden = true; });
    if (img.complete && img.getAttribute("src") && img.naturalWidth === 0) img.hidden = true;
  }

  function copyText(input, status) {
    function done(ok) {
      status.textContent = ok ? "Copied to the clipboard." : "Could not copy: the address is selected, press Ctrl+C.";
    }
    function fallback() {
      input.focus();
      input.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      done(ok);
    }
    status.textContent = "";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }

  function setUpCopyButtons() {
    document.querySelectorAll("button[data-copy-from]").forEach(function (button) {
      button.addEventListener("click", function () {
        copyText($(button.getAttribute("data-copy-from")), $("copy-status"));
      });
    });
  }

  // The API's message, or a sentence about the status when the body is not the API's JSON.
  function errorMessage(response, body) {
    if (body && typeof body.error === "string") return body.error;
    if (response.status === 429) return "Too many requests: wait a moment and try again.";
    return "The service answered " + response.status + ". Try again in a moment.";
  }

  // The fields an API error is about: listed in `fields`, or implied by its code.
  function invalidFields(body) {
    if (!body) return {};
    if (body.fields) return body.fields;
    if (body.code === "invalid_url") return { url: body.error };
    if (body.code === "alias_taken") return { alias: body.error };
    return {};
  }

  function showError(form, message, fields) {
    var names = Object.keys(fields || {});
    $("form-error").textContent = message;
    ["url", "alias", "expires_at"].forEach(function (name) {
      if (names.indexOf(name) >= 0) form.elements[name].setAttribute("aria-invalid", "true");
      else form.elements[name].removeAttribute("aria-invalid");
    });
    var first = names.filter(function (name) { return form.elements[name]; })[0];
    if (first) form.elements[first].focus();
  }

  function showResult(link) {
    var result = $("result");
    var qr = $("qr");
    $("short-url").value = link.short_url;
    $("target-url").href = link.original_url;
    $("target-url").textContent = link.original_url;
    $("details-link").href = "/links/" + encodeURIComponent(link.short_code);
    $("copy-status").textContent = "";
    qr.alt = "QR code for " + link.short_url;
    qr.src = "/urls/" + encodeURIComponent(link.short_code) + "/qr";
    result.hidden = false;
    $("result-heading").focus();
  }

  function requestBody(form) {
    var body = { url: form.elements.url.value.trim() };
    var alias = form.elements.alias.value.trim();
    var expires = form.elements.expires_at.value;
    if (alias) body.alias = alias;
    if (expires) {
      var moment = new Date(expires); // datetime-local is the visitor's local time
      if (isNaN(moment.getTime())) return { error: "The expiry is not a valid date and time.", field: "expires_at" };
      body.expires_at = moment.toISOString();
    }
    if (!body.url) return { error: "Enter the URL to shorten.", field: "url" };
    return { body: body };
  }

  function setUpForm(form) {
    var button = $("submit");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var built = requestBody(form);
      if (built.error) {
        var fields = {};
        fields[built.field] = built.error;
        showError(form, built.error, fields);
        return;
      }
      showError(form, "", {});
      button.disabled = true;
      button.textContent = "Shortening…";
      fetch("/shorten", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(built.body),
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.json().catch(function () { return null; }).then(function (body) {
            if (response.ok && body) showResult(body);
            else showError(form, errorMessage(response, body), invalidFields(body));
          });
        })
        .catch(function () {
          showError(form, "Could not reach the service. Check your connection and try again.", {});
        })
        .then(function () {
          button.disabled = false;
          button.textContent = "Shorten";
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("img.qr").forEach(watchQr);
    setUpCopyButtons();
    var form = $("shorten-form");
    if (form) setUpForm(form);
  });
})();
