// What the accessibility tests measure in the rendered page (tests/pages/test_accessibility.py), in Chromium:
// WCAG 2 contrast of text against the colour really behind it, the focus ring of the focused element, the
// elements the keyboard must reach, and what the mouse can do that the keyboard cannot.
(() => {
  const FOCUSABLE = 'a[href], area[href], button, input, select, textarea, summary, iframe, [tabindex], '
    + '[contenteditable]:not([contenteditable="false"])';

  function parse(text) {
    const m = /^rgba?\(([^)]+)\)$/.exec(text.trim());
    if (!m) return null;  // a colour Chromium did not give as rgb(): reported, never guessed
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }

  function over(top, bottom) {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  }

  function luminance(c) {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  function ratio(a, b) {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  }

  // The colour behind an element: its own background and its ancestors', composited down to the first
  // opaque one (the white canvas below all).
  function background(el) {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const bg = parse(getComputedStyle(n).backgroundColor);
      if (bg && bg[3] > 0) {
        layers.push(bg);
        if (bg[3] >= 1) break;
      }
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  }

  function opacity(el) {
    let total = 1;
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) total *= Number(getComputedStyle(n).opacity);
    return total;
  }

  function describe(el) {
    let name = el.tagName.toLowerCase();
    if (el.getAttribute("id")) name += "#" + el.getAttribute("id");  // a form's el.id may be its field named id
    for (const c of el.classList) name += "." + c;
    const parent = el.parentElement && el.parentElement.closest("[id], section, form, nav, table");
    return parent && parent !== document.body ? describe.short(parent) + " > " + name : name;
  }
  describe.short = (el) => el.tagName.toLowerCase() + (el.getAttribute("id") ? "#" + el.getAttribute("id") : "")
    + [...el.classList].map((c) => "." + c).join("");

  function shown(el) {
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return false;
    const r = el.getBoundingClientRect();
    // off the page (a skip link waiting for focus) or clipped to a pixel (text for screen readers only)
    return r.width > 1 && r.height > 1 && r.right + scrollX > 0 && r.bottom + scrollY > 0;
  }

  function ownText(el) {
    if (el.tagName === "SELECT") return el.selectedOptions.length ? el.selectedOptions[0].text.trim() : "";
    if (el.tagName === "INPUT" || el.tagName === "TEXTAREA") {
      return ["checkbox", "radio", "file", "range", "color", "hidden", "image"].includes(el.type) ? "" : el.value.trim();
    }
    return [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
  }

  // One element's text against its background; null when it passes or has no text of its own.
  function contrastOf(el, pseudo) {
    const text = pseudo ? el.placeholder.trim() : ownText(el);
    if (!text || el.closest(":disabled")) return null;  // WCAG exempts inactive controls
    const style = getComputedStyle(el, pseudo || null);
    const paint = el instanceof SVGElement ? style.fill : style.color;  // a chart's text is painted by its fill
    const colour = parse(paint);
    const behind = background(el);
    if (!colour) return { where: describe(el), text: text.slice(0, 40), problem: "colour " + paint + " not rgb()" };
    const seen = over([colour[0], colour[1], colour[2], colour[3] * opacity(el)], behind);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const needed = large ? 3 : 4.5;
    const got = ratio(seen, behind);
    if (got >= needed) return null;
    return { where: describe(el) + (pseudo ? pseudo : ""), text: text.slice(0, 40), ratio: Math.round(got * 100) / 100,
      needed, colour: paint, background: "rgb(" + behind.slice(0, 3).map(Math.round).join(", ") + ")" };
  }

  function contrast() {
    const offenders = [];
    for (const el of document.body.querySelectorAll("*")) {
      if (["SCRIPT", "STYLE", "OPTION", "OPTGROUP", "TEMPLATE"].includes(el.tagName) || !shown(el)) continue;
      const found = contrastOf(el, null);
      if (found) offenders.push(found);
      if (el.placeholder && !el.value) {
        const placeholder = contrastOf(el, "::placeholder");
        if (placeholder) offenders.push(placeholder);
      }
    }
    return offenders;
  }

  // Every element Tab must reach, numbered in data-a11y; a radio group is one stop.
  function focusables() {
    const groups = new Map();  // (form, name) of a radio group -> its stop
    const found = [];
    for (const el of document.querySelectorAll(FOCUSABLE)) {
      if (el.disabled || el.type === "hidden" || el.tabIndex < 0 || el.closest("[inert]")) continue;
      if (!el.checkVisibility({ checkVisibilityCSS: true })) continue;
      if (el.type === "radio") {
        const names = groups.get(el.form) || new Map();
        groups.set(el.form, names);
        if (names.has(el.name)) { el.dataset.a11y = names.get(el.name); continue; }
        names.set(el.name, String(found.length));
      }
      el.dataset.a11y = String(found.length);
      found.push(describe(el));
    }
    return found;
  }

  // The focused element: which one it is, whether its focus ring can be seen (>= 3:1 against the colour
  // around it), and whether its text still reads while focused.
  function focused() {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return { index: null, where: "the page" };
    const style = getComputedStyle(el);
    const around = background(el.parentElement || el);
    let ring = null;
    let problem = null;
    if (!["none", "hidden"].includes(style.outlineStyle) && parseFloat(style.outlineWidth) >= 2) {
      ring = parse(style.outlineColor);
    } else if (style.boxShadow !== "none") {
      ring = parse((/rgba?\([^)]+\)/.exec(style.boxShadow) || [""])[0]);
    } else {
      problem = "no focus ring (outline " + style.outlineStyle + " " + style.outlineWidth + ", no box-shadow)";
    }
    let ringRatio = null;
    if (!problem && !ring) problem = "focus ring colour not rgb(): " + style.outlineColor;
    if (!problem) {
      ringRatio = ratio(over(ring, around), around);
      if (ringRatio < 3) problem = "focus ring " + style.outlineColor + " is " + ringRatio.toFixed(2) + ":1 against " + "rgb(" + around.slice(0, 3).map(Math.round).join(", ") + "), under 3:1";
    }
    const r = el.getBoundingClientRect();
    if (!problem && (r.bottom < 0 || r.top > innerHeight || r.right < 0 || r.left > innerWidth)) problem = "focused but off the screen";
    const text = contrastOf(el, null);
    if (!problem && text) problem = "text while focused " + text.ratio + ":1, under " + text.needed + ":1";
    return { index: el.dataset.a11y === undefined ? null : Number(el.dataset.a11y), where: describe(el), problem };
  }

  // What a mouse can use that the keyboard cannot: a pointer cursor, an onclick or a widget role on an
  // element Tab never reaches.
  function mouseOnly() {
    const found = [];
    for (const el of document.body.querySelectorAll("*")) {
      if (!shown(el) || el.closest(FOCUSABLE + ", label")) continue;
      const role = el.getAttribute("role");
      if (getComputedStyle(el).cursor === "pointer" || el.hasAttribute("onclick")
          || ["button", "link", "tab", "checkbox", "menuitem", "switch", "option"].includes(role)) found.push(describe(el));
    }
    return found;
  }

  // What sticks out past the right edge (the cause of a sideways scroll), deepest elements first.
  function wide() {
    const edge = document.documentElement.clientWidth;
    const found = [];
    for (const el of document.body.querySelectorAll("*")) {
      if (!shown(el) || el.getBoundingClientRect().right + scrollX <= edge + 0.5) continue;
      if (![...el.children].some((c) => shown(c) && c.getBoundingClientRect().right + scrollX > edge + 0.5)) found.push(describe(el) + " to " + Math.round(el.getBoundingClientRect().right + scrollX) + "px");
    }
    return { scrollWidth: document.documentElement.scrollWidth, clientWidth: edge, found: found.slice(0, 10) };
  }

  window.a11y = { contrast, focusables, focused, mouseOnly, wide };
})();
