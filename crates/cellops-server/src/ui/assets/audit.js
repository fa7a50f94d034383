// Verifies one ledger record in the browser, trusting neither the server's hashes nor its
// root: the record's canonical entry (RFC 8785) is rebuilt and hashed into its chain hash,
// the chain hash is proven into a Merkle root (RFC 9162 inclusion proof), and that root must
// be the one in a checkpoint (C2SP signed note) whose Ed25519 signature verifies under the
// trusted key typed into the page. Formats: docs/ledger-format.md.
"use strict";
(() => {
  const utf8 = new TextEncoder();

  function fail(message) {
    throw new Error(message);
  }

  function hexToBytes(hex) {
    if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/.test(hex)) fail("not lower-case hex: " + hex);
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }

  function bytesToHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function base64ToBytes(text) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) fail("not base64: " + text);
    const bin = atob(text);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function concat(...parts) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function sameBytes(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // RFC 8785: members sorted by UTF-16 code units (JavaScript's default string order),
  // strings and numbers exactly as ECMAScript's JSON.stringify writes them.
  function canonical(value) {
    if (value === null || typeof value === "boolean" || typeof value === "string") {
      return JSON.stringify(value);
    }
    if (typeof value === "number") {
      if (!Number.isFinite(value)) fail("a number that is not finite cannot be canonical");
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (typeof value === "object") {
      return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
    }
    fail("not a JSON value: " + typeof value);
  }

  // The canonical entry of a record (ledger-format §2) with the given signature block.
  function entryText(record, signature) {
    return canonical({
      v: 1,
      seq: record.seq,
      stream: record.stream,
      type: record.type,
      version: record.version,
      payload: record.payload,
      actor: record.actor,
      site: record.site,
      recorded_at: record.recorded_at,
      reason: record.reason ?? null,
      corrects: record.corrects ?? null,
      signature: signature ?? null,
    });
  }

  // A verifier key `<name>+<key id hex>+<base64(0x01 || public key)>` (ledger-format §6.3).
  async function readKey(text) {
    const t = text.trim();
    const first = t.indexOf("+");
    const second = t.indexOf("+", first + 1);
    if (first <= 0 || second < 0) fail("a key looks like name+keyid+base64");
    const name = t.slice(0, first);
    const idHex = t.slice(first + 1, second);
    if (!/^[0-9a-f]{8}$/.test(idHex)) fail("the key id must be 8 hex digits");
    const raw = base64ToBytes(t.slice(second + 1));
    if (raw.length !== 33 || raw[0] !== 1) fail("not an Ed25519 key (type byte 0x01 and 32 bytes)");
    const publicKey = raw.slice(1);
    const id = (await sha256(concat(utf8.encode(name), [0x0a, 0x01], publicKey))).slice(0, 4);
    if (bytesToHex(id) !== idHex) fail("the key id does not match the key");
    let key;
    try {
      key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      const err = new Error("Ed25519: " + e.message);
      err.unsupported = e.name === "NotSupportedError";
      throw err;
    }
    return { name, id, key };
  }

  // Opens a signed note with the trusted key; returns the signed text (ledger-format §6.2).
  async function openNote(note, trusted) {
    if (typeof note !== "string" || note.length > 1 << 20) fail("no note, or larger than 1 MiB");
    if (/[\x00-\x09\x0b-\x1f\x7f]/.test(note)) fail("the note contains a control character");
    const split = note.lastIndexOf("\n\n");
    if (split < 0) fail("the note has no signature block");
    const text = note.slice(0, split + 1);
    const block = note.slice(split + 2);
    if (!block.endsWith("\n")) fail("the signature block must end with a newline");
    const lines = block.slice(0, -1).split("\n");
    if (lines.length > 100) fail("more than 100 signature lines");
    let verified = false;
    for (const line of lines) {
      if (!line.startsWith("\u2014 ")) fail("a signature line must start with an em dash");
      const rest = line.slice(2);
      const space = rest.indexOf(" ");
      if (space <= 0) fail("a signature line is `— name base64`");
      const name = rest.slice(0, space);
      const blob = base64ToBytes(rest.slice(space + 1));
      if (blob.length < 5) fail("a signature is too short");
      if (name !== trusted.name || !sameBytes(blob.slice(0, 4), trusted.id)) continue;
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, trusted.key, blob.slice(4), utf8.encode(text));
      if (!ok) fail("the trusted key's signature does not verify: the checkpoint was altered");
      verified = true;
    }
    if (!verified) fail("the checkpoint carries no signature by the trusted key " + trusted.name);
    return text;
  }

  // A checkpoint body: origin, size, base64 root, optional extension lines (§6.1).
  function readBody(text) {
    const lines = text.split("\n");
    if (lines.length < 4 || lines[lines.length - 1] !== "") fail("a checkpoint has origin, size and root lines");
    const [origin, sizeText, rootText] = lines;
    if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) fail("the checkpoint size is not a decimal number");
    const root = base64ToBytes(rootText);
    if (root.length !== 32) fail("the checkpoint root is not 32 bytes");
    return { origin, size: Number(sizeText), root };
  }

  // RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
  async function rootFromProof(leafIndex, treeSize, leafHash, path) {
    if (!(leafIndex < treeSize)) fail("the leaf is outside the tree");
    let fn = leafIndex;
    let sn = treeSize - 1;
    let r = leafHash;
    for (const p of path) {
      if (sn === 0) fail("the proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat([0x01], p, r));
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      } else {
        r = await sha256(concat([0x01], r, p));
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail("the proof is too short");
    return r;
  }

  // Verifies `record` (as GET /api/ledger/records/{seq} answers) with `proof` (GET
  // /api/ledger/proofs/inclusion) against the signed `note` under `keyText`. Returns
  // {ok, steps: [{id, ok, detail}]}; stops at the first failed step.
  async function verify(record, proof, note, keyText) {
    const steps = [];
    let current = "key";
    try {
      const trusted = await readKey(keyText);
      steps.push({ id: "key", ok: true, detail: trusted.name });
      current = "note";
      const text = await openNote(note, trusted);
      steps.push({ id: "note", ok: true, detail: "" });
      current = "body";
      const body = readBody(text);
      if (body.origin !== trusted.name) fail("the checkpoint is of log " + body.origin + ", not " + trusted.name);
      if (proof.tree_size !== body.size) fail("the proof is for tree size " + proof.tree_size + ", the checkpoint for " + body.size);
      steps.push({ id: "body", ok: true, detail: body.origin + " · " + body.size });
      current = "entry";
      const entry = utf8.encode(entryText(record, record.signature));
      const chain = await sha256(concat([0x02], hexToBytes(record.prev_hash), await sha256(entry)));
      if (bytesToHex(chain) !== record.hash) fail("the content hashes to " + bytesToHex(chain) + ", the record says " + record.hash);
      steps.push({ id: "entry", ok: true, detail: bytesToHex(chain) });
      if (record.signature) {
        current = "content";
        const unsigned = bytesToHex(await sha256(utf8.encode(entryText(record, null))));
        if (unsigned !== record.signature.content_hash) fail("the signature manifest names other content");
        steps.push({ id: "content", ok: true, detail: record.signature.meaning });
      }
      current = "inclusion";
      const leaf = await sha256(concat([0x00], chain));
      const root = await rootFromProof(record.seq - 1, body.size, leaf, proof.path.map(hexToBytes));
      if (!sameBytes(root, body.root)) fail("the proof leads to another root than the signed one");
      steps.push({ id: "inclusion", ok: true, detail: "#" + record.seq + " / " + body.size });
      return { ok: true, steps };
    } catch (e) {
      steps.push({ id: current, ok: false, detail: e.message, unsupported: !!e.unsupported });
      return { ok: false, steps };
    }
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) fail(url + ": " + ((body.error && body.error.message) || response.status));
    return body;
  }

  function show(section, state, headline, steps) {
    const result = document.getElementById("verify-result");
    result.hidden = false;
    result.dataset.state = state;
    result.className = "outcome " + (state === "ok" ? "pass" : state === "failed" ? "refuse" : "error");
    result.textContent = "";
    const p = document.createElement("p");
    p.className = "headline";
    p.textContent = headline;
    result.appendChild(p);
    const list = document.getElementById("verify-steps");
    list.textContent = "";
    for (const s of steps) {
      const li = document.createElement("li");
      li.className = s.ok ? "ok" : "fail";
      li.dataset.step = s.id;
      const label = section.dataset["step" + s.id[0].toUpperCase() + s.id.slice(1)] || s.id;
      li.textContent = label + (s.detail ? " — " + s.detail : "");
      list.appendChild(li);
    }
  }

  async function run(section) {
    const seq = Number(section.dataset.seq);
    const keyText = document.getElementById("trusted-key").value;
    show(section, "working", section.dataset.msgWorking, []);
    let result;
    try {
      const checkpoint = await getJson("/api/ledger/checkpoint");
      if (!checkpoint.note || checkpoint.size < seq) {
        show(section, "pending", section.dataset.msgPending, []);
        return;
      }
      const record = await getJson("/api/ledger/records/" + seq);
      const proof = await getJson("/api/ledger/proofs/inclusion?seq=" + seq + "&tree_size=" + checkpoint.size);
      result = await verify(record, proof, checkpoint.note, keyText);
    } catch (e) {
      result = { ok: false, steps: [{ id: "fetch", ok: false, detail: e.message }] };
    }
    const unsupported = result.steps.some((s) => s.unsupported);
    const headline = result.ok
      ? section.dataset.msgOk
      : section.dataset.msgFail + (unsupported ? ": " + section.dataset.msgUnsupported : "");
    show(section, result.ok ? "ok" : "failed", headline, result.steps);
  }

  window.cellopsAudit = { verify, canonical, entryText };

  document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("verify");
    if (!section) return;
    document.getElementById("verify-button").addEventListener("click", () => run(section));
  });
})();
