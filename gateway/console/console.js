// The ops console: parses this node's /metrics (Prometheus text format)
// and renders a few tables, every 5 seconds. No dependencies.
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

const breaker = ["closed", "half-open", "open"];

function render(ms) {
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

  s.push(section("Providers",
    table(["provider", "breaker", "ok", "failed"], (ms.spa_provider_breaker_state || []).map((p) => {
      const st = breaker[p.value] || String(p.value);
      const by = (o) => (ms.spa_provider_requests_total || []).filter((x) => x.labels.provider === p.labels.provider && (o ? x.labels.outcome === "ok" : x.labels.outcome !== "ok")).reduce((a, x) => a + x.value, 0);
      return [p.labels.provider, flag(st, p.value === 0 ? "ok" : p.value === 1 ? "warn" : "bad"), by(true), by(false)];
    }))));

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

async function refresh() {
  const status = document.getElementById("status");
  try {
    const res = await fetch("/metrics", { cache: "no-store" });
    if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
    render(parse(await res.text()));
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "muted";
  } catch (e) {
    status.textContent = "cannot read metrics: " + e.message;
    status.className = "bad";
  }
}

refresh();
setInterval(refresh, 5000);
