// The developer console: renders /api/openapi.json and sends real requests ("try it").
const root = document.getElementById("operations");
const tokenInput = document.getElementById("token");
const csrf = document.getElementById("csrf").value;
const filter = document.getElementById("filter");
tokenInput.value = sessionStorage.getItem("la-dev-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("la-dev-token", tokenInput.value));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function resolve(doc, schema) {
  if (schema && schema.$ref) return resolve(doc, doc.components.schemas[schema.$ref.split("/").pop()]);
  return schema || {};
}

// An example value for a schema, so the body box starts as a request that validates.
function example(doc, schema, depth = 0) {
  schema = resolve(doc, schema);
  if (depth > 6) return null;
  if (schema.examples && schema.examples.length) return schema.examples[0];
  if (schema.default !== undefined && schema.default !== null) return schema.default;
  if (schema.anyOf) return example(doc, schema.anyOf.find((s) => s.type !== "null") || schema.anyOf[0], depth + 1);
  if (schema.enum) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  switch (schema.type) {
    case "object": {
      const out = {};
      for (const name of schema.required || Object.keys(schema.properties || {})) {
        out[name] = example(doc, schema.properties[name], depth + 1);
      }
      return out;
    }
    case "array": return [example(doc, schema.items, depth + 1)];
    case "integer": return Math.max(schema.minimum ?? 1, 1);
    case "number": return 1;
    case "boolean": return true;
    case "string": return "x".repeat(Math.max(schema.minLength || 1, 1));
    default: return null;
  }
}

function operation(doc, path, method, op) {
  const params = (op.parameters || []).filter((p) => p.name.toLowerCase() !== "x-csrf-token");
  const inputs = {};
  const form = el("div", { class: "params" });
  for (const p of params) {
    const input = el("input", { name: p.name, placeholder: p.description || p.name, "aria-label": `${p.in} ${p.name}` });
    if (p.name === "Idempotency-Key") input.value = crypto.randomUUID();
    else if (p.in === "header" && p.schema) {
      const given = p.schema.const ?? p.schema.default ?? (p.schema.enum || [])[0];
      if (given !== undefined && given !== null) input.value = String(given);
    }
    inputs[p.name] = { input, where: p.in };
    form.append(el("label", {}, `${p.name} (${p.in}${p.required ? ", required" : ""})`, input));
  }
  let bodyBox = null;
  // JSON bodies start as an example that validates; other media types (the tus upload
  // chunks) are sent as the text typed, with their own content type.
  const bodyTypes = Object.keys((op.requestBody && op.requestBody.content) || {});
  const bodyType = bodyTypes.includes("application/json") ? "application/json" : bodyTypes[0];
  if (bodyType) {
    const label = bodyType === "application/json" ? "JSON" : bodyType;
    bodyBox = el("textarea", { rows: "8", "aria-label": `request body (${label})` });
    if (bodyType === "application/json") {
      bodyBox.value = JSON.stringify(example(doc, op.requestBody.content[bodyType].schema), null, 2);
    }
    form.append(el("label", {}, `Body (${bodyType})`, bodyBox));
  }
  const output = el("div", { class: "response", "aria-live": "polite" });
  const send = el("button", { type: "button" }, "Send");
  send.addEventListener("click", async () => {
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    for (const [name, { input, where }] of Object.entries(inputs)) {
      if (where === "path") url = url.replace(`{${name}}`, encodeURIComponent(input.value));
      else if (where === "query" && input.value) query.set(name, input.value);
      else if (where === "header" && input.value) headers[name] = input.value;
    }
    if (query.toString()) url += `?${query}`;
    if (tokenInput.value) headers.Authorization = `Bearer ${tokenInput.value.trim()}`;
    else if (csrf && method !== "get") headers["X-CSRF-Token"] = csrf;
    const init = { method: method.toUpperCase(), headers, credentials: "same-origin" };
    if (bodyBox) { headers["Content-Type"] = bodyType; init.body = bodyBox.value; }
    output.replaceChildren(el("p", {}, "Sending…"));
    const started = performance.now();
    const response = await fetch(url, init);
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
    const ms = Math.round(performance.now() - started);
    output.replaceChildren(
      el("p", {}, el("span", { class: response.ok ? "status-ok" : "status-bad" }, `${response.status} ${response.statusText}`), ` · ${ms} ms · ${init.method} ${url}`),
      el("pre", { class: "response-body" }, shown || "(no body)"),
    );
  });
  const responses = Object.entries(op.responses).map(([code, r]) => `${code} ${r.description}`).join(" · ");
  const who = (op.security || []).map((s) => Object.keys(s)[0] || "anonymous").join(", ");
  return el("details", { class: "op", "data-path": path, "data-method": method },
    el("summary", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), el("span", { class: "path" }, path), el("span", {}, op.summary)),
    el("div", { class: "body" },
      op.description ? el("p", {}, op.description) : "",
      el("p", {}, el("small", {}, `Callers: ${who}. Answers: ${responses}`)),
      form, send, output));
}

// Tags are lower-case words ("api keys"); CSS capitalize would print "Api Keys".
function tagTitle(tag) {
  const title = tag.replace(/\bapi\b/g, "API");
  return title.charAt(0).toUpperCase() + title.slice(1);
}

async function main() {
  const doc = await (await fetch("/api/openapi.json")).json();
  const byTag = new Map();
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(doc, path, method, op));
    }
  }
  root.replaceChildren();
  for (const [tag, ops] of byTag) root.append(el("h2", { class: "tag" }, tagTitle(tag)), ...ops);
}

filter.addEventListener("input", () => {
  const needle = filter.value.toLowerCase();
  for (const op of root.querySelectorAll(".op")) {
    op.hidden = needle && !op.textContent.toLowerCase().includes(needle);
  }
});

main().catch((error) => { root.replaceChildren(el("p", { class: "error" }, `Could not load the API document: ${error}`)); });
