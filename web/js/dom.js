// A tiny element builder: h("button", {id: "x", onclick}, "text", child, ...).
// Attributes: `class`, `dataset` (object), `i18n` (key) with `i18nParams`, `on<event>`
// handlers, booleans (true sets the attribute, false/null leaves it out), everything else
// as an attribute.

import { tr } from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "i18n") tr(el, value, attrs.i18nParams);
    else if (name === "i18nParams") continue;
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An element whose text is the translation of `key`. */
export function txt(tag, key, params, attrs = {}) {
  return h(tag, { ...attrs, i18n: key, i18nParams: params });
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A labelled form field: <label><span>label</span><input …></label>. */
export function field(labelKey, input) {
  return h("label", { class: "field" }, txt("span", labelKey, undefined, { class: "field-label" }), input);
}
