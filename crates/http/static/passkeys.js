// Passkeys (WebAuthn Level 2) for Tessera's pages: the only script Tessera serves, loaded where
// a page offers passkeys. Buttons carry what their ceremony needs in data attributes; the
// server makes and checks every challenge. Without JavaScript (or WebAuthn) the buttons stay
// hidden and the pages work with passwords.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
  const post = async (url, fields) => {
    const res = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields) });
    let body = {};
    try { body = await res.json(); } catch (_) { body = { error: "The server did not answer. Try again." }; }
    return body;
  };
  const credential = (c) => {
    const r = c.response;
    const out = { id: c.id, rawId: enc(c.rawId), type: c.type, extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {}, response: { clientDataJSON: enc(r.clientDataJSON) } };
    if (r.attestationObject) {
      out.response.attestationObject = enc(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = enc(r.authenticatorData);
      out.response.signature = enc(r.signature);
      if (r.userHandle) out.response.userHandle = enc(r.userHandle);
    }
    return JSON.stringify(out);
  };
  const ceremonies = {
    async register(b, fields) {
      const start = await post("/account/passkeys/options", fields);
      if (start.error) return start;
      const pk = start.options.publicKey;
      pk.challenge = dec(pk.challenge);
      pk.user.id = dec(pk.user.id);
      (pk.excludeCredentials || []).forEach((c) => { c.id = dec(c.id); });
      const made = await navigator.credentials.create({ publicKey: pk });
      const name = document.getElementById("passkey-name");
      return post("/account/passkeys", { ...fields, token: start.token, name: name ? name.value : "", credential: credential(made) });
    },
    async get(b, fields, options, finish) {
      const start = await post(options, fields);
      if (start.error) return start;
      const pk = start.options.publicKey;
      pk.challenge = dec(pk.challenge);
      (pk.allowCredentials || []).forEach((c) => { c.id = dec(c.id); });
      const got = await navigator.credentials.get({ publicKey: pk });
      return post(finish, { ...fields, token: start.token, credential: credential(got) });
    },
  };
  document.querySelectorAll("[data-passkey]").forEach((b) => {
    b.hidden = false;
    b.addEventListener("click", async () => {
      const shown = document.getElementById("passkey-error");
      const fields = { csrf: b.dataset.csrf };
      if (b.dataset.request) fields.request = b.dataset.request;
      if (b.dataset.next) fields.next = b.dataset.next;
      b.disabled = true;
      try {
        let answer;
        if (b.dataset.passkey === "register") answer = await ceremonies.register(b, fields);
        else if (b.dataset.passkey === "sign-in") answer = await ceremonies.get(b, fields, "/login/passkey/options", "/login/passkey");
        else answer = await ceremonies.get(b, fields, "/login/two-step/passkey/options", "/login/two-step/passkey");
        if (answer.redirect) { window.location.assign(answer.redirect); return; }
        if (shown) { shown.textContent = answer.error || "The passkey could not be used."; shown.hidden = false; }
      } catch (e) {
        if (shown) { shown.textContent = "No passkey was used (" + e.name + "). Try again."; shown.hidden = false; }
      } finally {
        b.disabled = false;
      }
    });
  });
})();
