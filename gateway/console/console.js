// The ops console: parses this node's /metrics (Prometheus text format)
// and renders a few tables, every 5 seconds; with an admin token it also
// reads the API's admin routes (the cluster's members and partitions, dead
// letters, open payment exceptions, the audit log), which this listener
// forwards, and acts through them after a confirmation. No dependencies.
"use strict";

// parse returns {name: [{labels: {...}, value: number}]}.
function parse(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null) labels[l[1]] = l[2].replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    (out[m[1]] = out[m[1]] || []).push({ labels, value: Number(m[4]) });
  }
  return out;
}

function one(ms, name) {
  const s = ms[name];
  return s && s.length ? s[0].value : undefined;
}

function sum(ms, name) {
  return (ms[name] || []).reduce((a, s) => a + s.value, 0);
}

function fmt(v, unit) {
  if (v === undefined || Number.isNaN(v)) return "–";
  if (unit === "s") {
    if (v >= 3600) return (v / 3600).toFixed(1) + " h";
    if (v >= 60) return (v / 60).toFixed(1) + " min";
    return v.toFixed(v < 10 ? 2 : 0) + " s";
  }
  if (unit === "bytes") {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + u[i];
  }
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function table(head, rows) {
  if (!rows.length) return el("p", { class: "muted" }, `${head[0]}: none yet`);
  const t = el("table");
  t.append(el("tr", {}, ...head.map((h) => el("th", {}, h))));
  for (const r of rows) {
    t.append(el("tr", {}, ...r.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", typeof c === "number" ? { class: "num" } : {}, c)))));
  }
  return t;
}

function flag(text, cls) { return el("span", { class: cls }, text); }

function section(title, ...body) { return el("section", {}, el("h2", {}, title), ...body); }

// wide makes a section span the page (tables with long text).
function wide(sec) { sec.className = "wide"; return sec; }

const breaker = ["closed", "half-open", "open"];

function render(ms, ready) {
  const s = [];
  const b = (ms.spa_build_info || [])[0];
  document.getElementById("build").textContent = b ? `spa ${b.labels.version} (${b.labels.revision}, ${b.labels.goversion})` : "";

  const members = one(ms, "spa_cluster_members");
  const epochs = (ms.spa_cluster_partition_epoch || []).map((p) => [p.labels.partition, p.value]).sort((a, b) => Number(a[0]) - Number(b[0]));
  s.push(section("Cluster",
    members === undefined ? el("p", { class: "muted" }, "single node (no cluster)") :
      table(["members", "partitions owned here"], [[members, fmt(one(ms, "spa_cluster_partitions_owned"))]]),
    table(["kind", "partitions served", "actors here"], (ms.spa_cluster_kind_partitions || []).map((p) => {
      const a = (ms.spa_cluster_kind_actors || []).find((x) => x.labels.kind === p.labels.kind);
      return [p.labels.kind, p.value, a ? a.value : 0];
    })),
    epochs.length ? table(["partition owned", "epoch"], epochs) : ""));

  s.push(section("Actors",
    table(["kind", "live", "mailbox"], ["schedule", "resource", "inventory", "session", "quota"].map((k) => [
      k, fmt(one(ms, `spa_${k}_actors`)), fmt(one(ms, `spa_${k}_mailbox_messages`))]))));

  s.push(section("Streams and consumers",
    table(["stream", "messages", "bytes", "limit"], (ms.spa_jetstream_stream_messages || []).map((m) => {
      const st = m.labels.stream;
      const f = (n) => ((ms[n] || []).find((x) => x.labels.stream === st) || {}).value;
      const max = f("spa_jetstream_stream_max_bytes");
      return [st, m.value, fmt(f("spa_jetstream_stream_bytes"), "bytes"), max > 0 ? fmt(max, "bytes") : "none"];
    })),
    table(["consumer", "pending", "ack pending", "redelivered", "oldest unacked"], (ms.spa_jetstream_consumer_pending_messages || []).map((m) => {
      const k = (n) => ((ms[n] || []).find((x) => x.labels.stream === m.labels.stream && x.labels.consumer === m.labels.consumer) || {}).value;
      const age = k("spa_jetstream_consumer_oldest_unacked_seconds");
      return [`${m.labels.stream}/${m.labels.consumer}`, m.value, k("spa_jetstream_consumer_ack_pending_messages"),
        k("spa_jetstream_consumer_redelivered_messages"), age > 900 ? flag(fmt(age, "s"), "bad") : fmt(age, "s")];
    }))));

  const age = one(ms, "spa_outbox_oldest_pending_seconds");
  s.push(section("Outbox",
    table(["pending", "oldest", "published", "publish errors"], [[fmt(one(ms, "spa_outbox_pending")),
      age > 300 ? flag(fmt(age, "s"), "bad") : fmt(age, "s"), fmt(one(ms, "spa_outbox_published_total")), fmt(one(ms, "spa_outbox_publish_errors_total"))]])));

  // A breaker's state is /readyz's (asked now); the gauge is the fallback.
  const live = (ready && ready.providers) || {};
  const names = [...new Set([...(ms.spa_provider_breaker_state || []).map((p) => p.labels.provider), ...Object.keys(live)])].sort();
  s.push(section("Providers",
    table(["provider", "breaker", "last success", "ok", "failed"], names.map((name) => {
      const g = (ms.spa_provider_breaker_state || []).find((p) => p.labels.provider === name);
      const st = live[name] ? live[name].state : g ? breaker[g.value] || String(g.value) : "–";
      const by = (o) => (ms.spa_provider_requests_total || []).filter((x) => x.labels.provider === name && (o ? x.labels.outcome === "ok" : x.labels.outcome !== "ok")).reduce((a, x) => a + x.value, 0);
      return [name, el("span", { class: st === "closed" ? "ok" : st === "open" ? "bad" : "warn", "data-provider": name }, st),
        live[name] && live[name].last_success ? new Date(live[name].last_success).toLocaleString() : "–", by(true), by(false)];
    }))));

  if (ready) {
    s.push(section("Readiness",
      el("p", {}, ready.status === "ready" ? flag("ready", "ok") : flag(ready.status || "unknown", "bad"), ready.degraded ? " (degraded: a provider breaker is not closed)" : ""),
      table(["check", "result"], Object.entries(ready.checks || {}).sort().map(([k, v]) => [k, v === "ok" ? flag(v, "ok") : flag(v, "bad")]))));
  }

  const oldest = one(ms, "spa_payments_exception_oldest_seconds");
  s.push(section("Payment exceptions",
    table(["class", "open"], (ms.spa_payments_exceptions_open || []).map((p) => [p.labels.class, p.value])),
    el("p", {}, "oldest open: ", oldest > 86400 ? flag(fmt(oldest, "s"), "bad") : fmt(oldest, "s"))));

  const used = one(ms, "spa_db_pool_acquired_connections"), max = one(ms, "spa_db_pool_max_connections");
  s.push(section("Database",
    table(["in use", "idle", "max", "waits"], [[used > 0.9 * max && max > 0 ? flag(fmt(used), "warn") : fmt(used),
      fmt(one(ms, "spa_db_pool_idle_connections")), fmt(max), fmt(one(ms, "spa_db_pool_waits_total"))]]),
    table(["retry cause", "retries"], (ms.spa_db_tx_retries_total || []).map((p) => [p.labels.cause, p.value])),
    table(["slow operation", "statements"], (ms.spa_db_slow_statements_total || []).map((p) => [p.labels.query, p.value]).sort((a, b) => b[1] - a[1]).slice(0, 10))));

  s.push(section("Notifications",
    table(["channel", "sent", "delivered", "failed", "fell back to"], [...new Set((ms.spa_notifications_sent_total || []).map((x) => x.labels.channel))].map((ch) => {
      const c = (n) => (ms[n] || []).filter((x) => x.labels.channel === ch).reduce((a, x) => a + x.value, 0);
      return [ch, c("spa_notifications_sent_total"), c("spa_notifications_delivered_total"), c("spa_notifications_failed_total"), c("spa_notifications_fallbacks_total")];
    }))));

  s.push(section("Runtime",
    table(["goroutines", "memory (RSS)", "heap in use", "CPU seconds"], [[fmt(one(ms, "go_goroutines")),
      fmt(one(ms, "process_resident_memory_bytes"), "bytes"), fmt(one(ms, "go_memstats_heap_inuse_bytes"), "bytes"), fmt(one(ms, "process_cpu_seconds_total"))]]),
    table(["HTTP requests", "5xx"], [[sum(ms, "spa_http_requests_total"),
      (ms.spa_http_requests_total || []).filter((x) => /^5/.test(x.labels.status)).reduce((a, x) => a + x.value, 0)]])));

  document.getElementById("sections").replaceChildren(...s);
}

// ---- admin: the API's admin routes, with the operator's token ----

// The token lives in sessionStorage: gone with the tab, never in a cookie
// (so no request carries it unasked), never in the page's markup.
const tokenKey = "spa-console-admin-token";
function token() { return sessionStorage.getItem(tokenKey) || ""; }

// newKey is an Idempotency-Key for one action: a retried click (a lost
// answer) is then the same request, not a second one. getRandomValues
// works on a plain-http private address, randomUUID would not.
function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return "console-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token() };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    headers["Idempotency-Key"] = newKey();
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = {};
  try { data = JSON.parse(text); } catch (e) { /* not JSON: shown as text */ }
  if (!res.ok) {
    const err = data.error || {};
    throw new Error(`${res.status} ${err.code || ""}: ${err.message || text}`);
  }
  return data;
}

// settled turns a request into {data} or {error}, so one failing route
// (notifications off: 503) leaves the others shown.
async function settled(p) {
  try { return { data: await p }; } catch (e) { return { error: e.message }; }
}

function when(t) { return t ? new Date(t).toLocaleString() : "–"; }

function button(label, action, attrs, onClick) {
  const b = el("button", Object.assign({ type: "button", "data-action": action }, attrs || {}), label);
  b.addEventListener("click", onClick);
  return b;
}

// ranges writes partition numbers as "0-5, 9".
function ranges(nums) {
  const out = [];
  for (let i = 0; i < nums.length; i++) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j] + 1) j++;
    out.push(i === j ? String(nums[i]) : `${nums[i]}-${nums[j]}`);
    i = j;
  }
  return out.join(", ");
}

function failed(title, r) { return section(title, el("p", { class: "bad" }, r.error)); }

function clusterSection(r) {
  if (r.error) return failed("Members and partitions", r);
  const c = r.data;
  if (c.mode !== "cluster") return section("Members and partitions", el("p", { class: "muted", id: "cluster-summary" }, "single node (no cluster): it owns every actor"));
  const parts = c.partitions || [];
  const unowned = parts.filter((p) => !p.owner).map((p) => p.partition).sort((a, b) => a - b);
  const byOwner = {};
  for (const p of parts) if (p.owner) (byOwner[p.owner] = byOwner[p.owner] || []).push(p);
  const summary = `${c.members.length} members, ` + (unowned.length === 0 ?
    `all ${parts.length} partitions owned` : `${parts.length - unowned.length} of ${parts.length} partitions owned`);
  return section("Members and partitions",
    el("p", { id: "cluster-summary" }, unowned.length ? flag(summary, "bad") : summary, ` (as ${c.node} sees it)`),
    table(["member", "API", "started", "partitions", "epochs"], c.members.map((m) => {
      const own = (byOwner[m.name] || []).sort((a, b) => a.partition - b.partition);
      const epochs = own.map((p) => p.epoch);
      const name = m.name + (m.self ? " (this node)" : "");
      return [m.standby ? flag(name + " — standby: database unreachable", "bad") : name, m.http || "–", when(m.started_at), ranges(own.map((p) => p.partition)) || "none",
        epochs.length ? `${Math.min(...epochs)}–${Math.max(...epochs)}` : "–"];
    })),
    unowned.length ? el("p", {}, flag("without an owner: " + ranges(unowned), "bad")) : "",
    el("details", {}, el("summary", {}, "every partition"),
      table(["partition", "owner", "epoch"], parts.slice().sort((a, b) => a.partition - b.partition).map((p) => [p.partition, p.owner || flag("none", "bad"), p.epoch]))));
}

function deadLettersSection(r) {
  if (r.error) return failed("Dead letters", r);
  const d = r.data;
  const body = [el("p", { id: "dead-letter-total" }, d.total === 0 ? "no dead letters" :
    `${d.total} dead letter${d.total === 1 ? "" : "s"}` + (d.truncated ? " (more than read)" : ""))];
  for (const g of d.groups) {
    const cls = g.error_class;
    body.push(el("div", { class: "group", "data-class": cls },
      el("h3", {}, `${cls}: ${g.count}`, " ",
        button("Retry all", "retry-class", { "data-class": cls }, () => confirmAction(
          `Retry all ${g.count} dead letters of class ${cls}? Each is queued again with a fresh round of attempts.`, [],
          () => api("POST", "/v1/admin/notifications/dead-letters/retry", { error_class: cls }), (x) => `retried ${x.retried}` + (x.remaining ? " (more remain: retry again)" : ""))),
        button("Discard all", "discard-class", { "data-class": cls }, () => confirmAction(
          `Discard all ${g.count} dead letters of class ${cls}? Their messages are never sent; the notifications stay dead.`, [],
          () => api("POST", "/v1/admin/notifications/dead-letters/discard", { error_class: cls, confirm: true }), (x) => `discarded ${x.discarded}` + (x.remaining ? " (more remain)" : "")))),
      el("p", { class: "muted" }, `first ${when(g.first_seen)}, last ${when(g.last_seen)}: ${g.example_error}`),
      table(["letter", "kind", "channel", "attempts", "retries", "died", "error", ""], g.letters.map((l) => [l.id, l.kind, l.channel, l.attempts, l.retries, when(l.dead_at), l.error,
        el("span", { class: "actions" },
          button("Retry", "retry-one", { "data-id": l.id }, () => confirmAction(`Retry dead letter ${l.id} (${l.kind} on ${l.channel})?`, [],
            () => api("POST", "/v1/admin/notifications/dead-letters/retry", { id: l.id }), (x) => `retried ${x.retried}`)),
          button("Discard", "discard-one", { "data-id": l.id }, () => confirmAction(`Discard dead letter ${l.id} (${l.kind} on ${l.channel})? Its message is never sent.`, [],
            () => api("POST", "/v1/admin/notifications/dead-letters/discard", { id: l.id, confirm: true }), (x) => `discarded ${x.discarded}`)))]))));
  }
  return wide(section("Dead letters", ...body));
}

function exceptionsSection(r) {
  if (r.error) return failed("Reconciliation exceptions", r);
  const xs = r.data.exceptions || [];
  return section("Reconciliation exceptions",
    xs.length ? "" : el("p", { class: "muted", id: "exceptions-none" }, "no open payment exceptions"),
    xs.length ? table(["opened", "class", "reference", "amount (minor)", "detail", ""], xs.map((x) => [when(x.opened_at), x.class, x.reference, x.amount_minor, x.detail,
      button("Resolve", "resolve-exception", { "data-id": x.id }, () => confirmAction(
        `Resolve exception ${x.id} (${x.class}, ${x.reference})?`,
        [["reason", "text", "reason (required, audited)"], ["write_off", "checkbox", "write the amount off"]],
        (v) => api("POST", `/v1/admin/payments/exceptions/${encodeURIComponent(x.id)}/resolve`, { reason: v.reason, write_off: v.write_off }),
        (y) => `exception ${y.id} ${y.state}`))])) : "",
    r.data.next ? el("p", { class: "muted" }, "newest 20 shown") : "");
}

function auditSection(r) {
  if (r.error) return failed("Recent admin actions", r);
  if (!(r.data.entries || []).length) return wide(section("Recent admin actions", el("p", { class: "muted" }, "no admin actions yet")));
  // The service audits a reason inside detail ({reason, detail}).
  return wide(section("Recent admin actions",
    table(["when", "who", "action", "subject", "reason"], (r.data.entries || []).map((e) => [when(e.at), `${e.actor_id} (${e.actor_role})`, e.action, e.subject,
      e.reason || (e.detail && typeof e.detail.reason === "string" ? e.detail.reason : "")]))));
}

// confirmAction is the one way an action runs: the dialog says what it
// will do, Confirm runs it (the API audits it), Cancel does nothing.
// fields are [name, type, label]; their values reach run.
let pending = null;
function confirmAction(text, fields, run, done) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-error").textContent = "";
  const box = document.getElementById("confirm-fields");
  box.replaceChildren(...fields.map(([name, type, label]) => el("label", {}, type === "checkbox" ? "" : label + " ",
    el("input", { name, type, id: "confirm-" + name }), type === "checkbox" ? " " + label : "")));
  pending = { run, done, fields };
  dlg.showModal();
}

async function confirmed() {
  if (!pending) return;
  const { run, done, fields } = pending;
  const v = {};
  for (const [name, type] of fields) {
    const input = document.getElementById("confirm-" + name);
    v[name] = type === "checkbox" ? input.checked : input.value;
  }
  const yes = document.getElementById("confirm-yes");
  yes.disabled = true;
  try {
    const out = await run(v);
    pending = null;
    document.getElementById("confirm").close();
    notice(done(out), "ok");
    lastAdmin = "";
    await refreshAdmin();
  } catch (e) {
    document.getElementById("confirm-error").textContent = e.message;
  } finally {
    yes.disabled = false;
  }
}

function notice(text, cls) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = cls;
  n.hidden = false;
}

// lastAdmin is what was drawn last: the admin sections are redrawn only
// when their data changed, so a row does not move under the pointer.
let lastAdmin = "";
async function refreshAdmin() {
  const main = document.getElementById("admin");
  const have = token() !== "";
  document.getElementById("token").hidden = have;
  document.getElementById("token-use").hidden = have;
  document.getElementById("token-set").hidden = !have;
  document.getElementById("token-forget").hidden = !have;
  if (!have) {
    lastAdmin = "";
    main.replaceChildren(section("Admin", el("p", { class: "muted" },
      "Enter an admin token (spa token --role admin, or an admin's access token) to see members and partitions, dead letters, payment exceptions and recent admin actions, and to act on them.")));
    return;
  }
  const [cluster, dead, exceptions, audit] = await Promise.all([
    settled(api("GET", "/v1/cluster")),
    settled(api("GET", "/v1/admin/notifications/dead-letters?limit=50")),
    settled(api("GET", "/v1/admin/payments/exceptions?state=open&limit=20")),
    settled(api("GET", "/v1/admin/audit?limit=15")),
  ]);
  const key = JSON.stringify([cluster, dead, exceptions, audit]);
  if (key === lastAdmin) return;
  lastAdmin = key;
  main.replaceChildren(clusterSection(cluster), deadLettersSection(dead), exceptionsSection(exceptions), auditSection(audit));
}

document.getElementById("token-use").addEventListener("click", () => {
  const v = document.getElementById("token").value.trim();
  document.getElementById("token").value = "";
  if (v) sessionStorage.setItem(tokenKey, v);
  lastAdmin = "";
  refreshAdmin();
});
document.getElementById("token-forget").addEventListener("click", () => {
  sessionStorage.removeItem(tokenKey);
  refreshAdmin();
});
document.getElementById("confirm-yes").addEventListener("click", confirmed);
document.getElementById("confirm-no").addEventListener("click", () => { pending = null; document.getElementById("confirm").close(); });

async function refreshMetrics() {
  const [res, ready] = await Promise.all([fetch("/metrics", { cache: "no-store" }), readiness()]);
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  render(parse(await res.text()), ready);
}

// readiness is /readyz's body (503 too: it says what is unready), or
// undefined when it cannot be read.
async function readiness() {
  try {
    // An admin token also reads why a check failed.
    let res = await fetch("/readyz", { cache: "no-store", headers: token() ? { Authorization: "Bearer " + token() } : {} });
    if (res.status === 401) res = await fetch("/readyz", { cache: "no-store" }); // a stale token
    return await res.json();
  } catch (e) {
    return undefined;
  }
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    await Promise.all([refreshMetrics(), refreshAdmin()]);
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "muted";
  } catch (e) {
    status.textContent = "cannot refresh: " + e.message;
    status.className = "bad";
  }
}

refresh();
setInterval(refresh, 5000);
