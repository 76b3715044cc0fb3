// The seat map on one <canvas>: every seat of every section as a small square, redrawn from
// the status string (one character per seat id) — never one DOM node per seat.
//
// Two views: the whole hall (sections in a grid under the stage) and one section zoomed in
// (with row and column numbers). Layout is computed in CSS pixels; the backing store is
// scaled by devicePixelRatio so the squares stay sharp.

import { t } from "./i18n.js";

const FONT = `system-ui, -apple-system, "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans KR", "NanumGothic", sans-serif`;

// Fixed sizes in CSS pixels.
const PAD = 12;
const STAGE_H = 30;
const STAGE_GAP = 14;
const LABEL_H = 20;
const GAP_X = 16;
const GAP_Y = 10;
const ROW_LABEL_W = 30;
const OVERVIEW_PITCH_MAX = 16;
const ZOOM_PITCH_MAX = 30;
const MIN_HEIGHT = 260;

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function readColors() {
  return {
    A: cssVar("--seat-available", "#7cc5a5"),
    H: cssVar("--seat-held", "#f0c05a"),
    S: cssVar("--seat-sold", "#c8c8cf"),
    mine: cssVar("--seat-mine", "#5878d6"),
    selected: cssVar("--seat-selected", "#e0562f"),
    unknown: cssVar("--seat-unknown", "#e6e6ea"),
    text: cssVar("--text-muted", "#606070"),
    strong: cssVar("--text", "#23232b"),
    stage: cssVar("--stage", "#2f3440"),
    stageText: cssVar("--stage-text", "#ffffff"),
    hover: cssVar("--seat-hover", "#23232b"),
    activeLabel: cssVar("--accent", "#3a5bc7"),
  };
}

export class SeatMap {
  /**
   * hooks: onSeatClick(seatId), onSectionClick(sectionIndex), seatState(seatId) → one of
   * "A" | "H" | "S" | "mine" | "selected", activeSection() → index or null (highlighted label).
   */
  constructor(canvas, tooltip, venue, hooks) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.venue = venue;
    this.hooks = hooks;
    this.ctx = canvas.getContext("2d");
    this.colors = readColors();
    this.view = null; // null = whole hall, else a section index
    this.layout = null;
    this.hover = null;
    this.frame = 0;

    this.onMove = (event) => this.handleMove(event);
    this.onLeave = () => this.setHover(null);
    this.onClick = (event) => this.handleClick(event);
    canvas.addEventListener("mousemove", this.onMove);
    canvas.addEventListener("mouseleave", this.onLeave);
    canvas.addEventListener("click", this.onClick);
    this.resizeObserver = new ResizeObserver(() => this.relayout());
    this.resizeObserver.observe(canvas.parentElement);
    this.relayout();
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.resizeObserver.disconnect();
    this.canvas.removeEventListener("mousemove", this.onMove);
    this.canvas.removeEventListener("mouseleave", this.onLeave);
    this.canvas.removeEventListener("click", this.onClick);
  }

  /** Show the whole hall (null) or one section, by index. */
  setView(sectionIndex) {
    this.view = sectionIndex === null || sectionIndex === undefined ? null : sectionIndex;
    this.canvas.dataset.view = this.view === null ? "all" : this.venue.sections[this.view].name;
    this.setHover(null);
    this.relayout();
  }

  /** Schedule a redraw (coalesced to one per animation frame). */
  invalidate() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  // ---- layout

  relayout() {
    const width = Math.max(280, Math.floor(this.canvas.parentElement.clientWidth));
    const maxHeight = Math.max(MIN_HEIGHT, Math.min(window.innerHeight * 0.72, 860));
    this.layout = this.view === null ? this.overviewLayout(width, maxHeight) : this.sectionLayout(width, maxHeight);
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${this.layout.height}px`;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(this.layout.height * dpr);
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.draw();
  }

  overviewLayout(width, maxHeight) {
    const sections = this.venue.sections;
    const n = sections.length;
    const maxCols = Math.max(...sections.map((s) => s.cols));
    const maxRows = Math.max(...sections.map((s) => s.rows));
    let best = null;
    for (let perRow = 1; perRow <= n; perRow += 1) {
      const gridRows = Math.ceil(n / perRow);
      const pitchW = (width - 2 * PAD - (perRow - 1) * GAP_X) / (perRow * maxCols);
      const fixedH = 2 * PAD + STAGE_H + STAGE_GAP + gridRows * LABEL_H + (gridRows - 1) * GAP_Y;
      const pitchH = (maxHeight - fixedH) / (gridRows * maxRows);
      const pitch = Math.min(pitchW, pitchH, OVERVIEW_PITCH_MAX);
      if (!best || pitch > best.pitch + 1e-9) best = { perRow, gridRows, pitch };
    }
    const pitch = Math.max(2, best.pitch);
    const cellW = maxCols * pitch;
    const cellH = LABEL_H + maxRows * pitch;
    const gridW = best.perRow * cellW + (best.perRow - 1) * GAP_X;
    const left = Math.max(PAD, (width - gridW) / 2);
    const top = PAD + STAGE_H + STAGE_GAP;
    const cells = sections.map((section, index) => {
      const gx = index % best.perRow;
      const gy = Math.floor(index / best.perRow);
      const x0 = left + gx * (cellW + GAP_X);
      const y0 = top + gy * (cellH + GAP_Y);
      const seatsX = x0 + (cellW - section.cols * pitch) / 2;
      return {
        index,
        section,
        seatsX,
        seatsY: y0 + LABEL_H,
        label: { x: seatsX, y: y0, w: section.cols * pitch, h: LABEL_H },
      };
    });
    const height = Math.ceil(top + best.gridRows * cellH + (best.gridRows - 1) * GAP_Y + PAD);
    return { mode: "all", width, height, pitch, cells, stage: { x: left + gridW * 0.2, y: PAD, w: gridW * 0.6, h: STAGE_H } };
  }

  sectionLayout(width, maxHeight) {
    const section = this.venue.sections[this.view];
    const fixedH = 2 * PAD + STAGE_H + STAGE_GAP + LABEL_H;
    const pitchW = (width - 2 * PAD - ROW_LABEL_W) / section.cols;
    const pitchH = (Math.max(maxHeight, 420) - fixedH) / section.rows;
    const pitch = Math.max(6, Math.min(pitchW, pitchH, ZOOM_PITCH_MAX));
    const gridW = section.cols * pitch;
    const seatsX = Math.max(PAD + ROW_LABEL_W, (width - gridW) / 2);
    const seatsY = PAD + STAGE_H + STAGE_GAP + LABEL_H;
    const cell = {
      index: this.view,
      section,
      seatsX,
      seatsY,
      label: { x: seatsX, y: seatsY - LABEL_H, w: gridW, h: LABEL_H },
    };
    const height = Math.ceil(seatsY + section.rows * pitch + PAD);
    return { mode: "section", width, height, pitch, cells: [cell], stage: { x: seatsX + gridW * 0.2, y: PAD, w: gridW * 0.6, h: STAGE_H } };
  }

  // ---- drawing

  draw() {
    const { ctx, layout, colors } = this;
    if (!layout) return;
    ctx.clearRect(0, 0, layout.width, layout.height);
    this.drawStage(layout.stage);
    const size = layout.pitch - Math.max(0.8, layout.pitch * 0.2);
    const inset = (layout.pitch - size) / 2;
    const round = layout.mode === "section" && typeof ctx.roundRect === "function";
    for (const cell of layout.cells) {
      this.drawCellLabels(cell, layout);
      const { section, seatsX, seatsY } = cell;
      let fill = "";
      for (let r = 0; r < section.rows; r += 1) {
        const y = seatsY + r * layout.pitch + inset;
        let id = section.first_seat_id + r * section.cols;
        for (let c = 0; c < section.cols; c += 1, id += 1) {
          const state = this.hooks.seatState(id);
          const color = state === "A" ? section.colour || colors.A : colors[state] || colors.unknown;
          if (color !== fill) {
            ctx.fillStyle = color;
            fill = color;
          }
          const x = seatsX + c * layout.pitch + inset;
          if (round) {
            ctx.beginPath();
            ctx.roundRect(x, y, size, size, Math.min(4, size * 0.25));
            ctx.fill();
          } else {
            ctx.fillRect(x, y, size, size);
          }
        }
      }
    }
    this.drawHover(size, inset);
  }

  drawStage(stage) {
    const { ctx, colors } = this;
    ctx.fillStyle = colors.stage;
    ctx.beginPath();
    if (typeof ctx.roundRect === "function") ctx.roundRect(stage.x, stage.y, stage.w, stage.h, 8);
    else ctx.rect(stage.x, stage.y, stage.w, stage.h);
    ctx.fill();
    ctx.fillStyle = colors.stageText;
    ctx.font = `600 13px ${FONT}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(t("seats.stage"), stage.x + stage.w / 2, stage.y + stage.h / 2 + 1, stage.w - 8);
  }

  drawCellLabels(cell, layout) {
    const { ctx, colors } = this;
    const active = this.hooks.activeSection?.() === cell.index;
    const { label, section } = cell;
    ctx.textBaseline = "middle";
    if (layout.mode === "all") {
      ctx.font = `${active ? 700 : 600} 12px ${FONT}`;
      ctx.fillStyle = active ? colors.activeLabel : colors.strong;
      ctx.textAlign = "left";
      ctx.fillText(t("section.chip", { name: section.name }), label.x, label.y + label.h / 2);
      if (section.grade) {
        const nameWidth = ctx.measureText(t("section.chip", { name: section.name })).width;
        ctx.font = `600 11px ${FONT}`;
        ctx.fillStyle = section.colour || colors.text;
        ctx.fillText(t("grade.name", { name: section.grade }), label.x + nameWidth + 6, label.y + label.h / 2);
      }
      ctx.font = `11px ${FONT}`;
      ctx.fillStyle = colors.text;
      ctx.textAlign = "right";
      ctx.fillText("⤢", label.x + label.w, label.y + label.h / 2);
      return;
    }
    // Zoomed: the section name is drawn by the page; here the column and row numbers.
    const pitch = layout.pitch;
    ctx.font = `${Math.min(11, Math.max(8, pitch * 0.45))}px ${FONT}`;
    ctx.fillStyle = colors.text;
    ctx.textAlign = "center";
    const every = pitch >= 18 ? 1 : pitch >= 11 ? 2 : 5;
    for (let c = 1; c <= section.cols; c += 1) {
      if (c !== 1 && c % every !== 0) continue;
      ctx.fillText(String(c), cell.seatsX + (c - 0.5) * pitch, label.y + label.h / 2);
    }
    ctx.textAlign = "right";
    for (let r = 1; r <= section.rows; r += 1) {
      ctx.fillText(String(r).padStart(2, "0"), cell.seatsX - 6, cell.seatsY + (r - 0.5) * pitch);
    }
  }

  drawHover(size, inset) {
    if (!this.hover || this.hover.kind !== "seat") return;
    const point = this.seatRect(this.hover.seatId);
    if (!point) return;
    const { ctx } = this;
    ctx.strokeStyle = this.colors.hover;
    ctx.lineWidth = this.layout.pitch >= 8 ? 2 : 1;
    ctx.strokeRect(point.x + inset - 1, point.y + inset - 1, size + 2, size + 2);
  }

  // ---- geometry

  /** Top-left of a seat's pitch box in CSS pixels, or null if it is not in the current view. */
  seatRect(seatId) {
    if (!this.layout || !this.venue.isSeat(seatId)) return null;
    const { sectionIndex, row, col } = this.venue.position(seatId);
    const cell = this.layout.cells.find((c) => c.index === sectionIndex);
    if (!cell) return null;
    const { pitch } = this.layout;
    return { x: cell.seatsX + (col - 1) * pitch, y: cell.seatsY + (row - 1) * pitch, size: pitch };
  }

  /** Centre of a seat relative to the canvas (CSS pixels), for tests and tooltips. */
  seatPoint(seatId) {
    const rect = this.seatRect(seatId);
    return rect ? { x: rect.x + rect.size / 2, y: rect.y + rect.size / 2 } : null;
  }

  hitTest(x, y) {
    if (!this.layout) return null;
    const { pitch } = this.layout;
    for (const cell of this.layout.cells) {
      const { label, section } = cell;
      if (this.layout.mode === "all" && x >= label.x && x <= label.x + label.w && y >= label.y && y < label.y + label.h) {
        return { kind: "section", index: cell.index };
      }
      const col = Math.floor((x - cell.seatsX) / pitch);
      const row = Math.floor((y - cell.seatsY) / pitch);
      if (col >= 0 && col < section.cols && row >= 0 && row < section.rows) {
        return { kind: "seat", seatId: section.first_seat_id + row * section.cols + col };
      }
    }
    return null;
  }

  eventPoint(event) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  // ---- pointer

  handleMove(event) {
    const { x, y } = this.eventPoint(event);
    this.setHover(this.hitTest(x, y), x, y);
  }

  setHover(hit, x = 0, y = 0) {
    const before = this.hover;
    this.hover = hit;
    const changed =
      (before?.kind || null) !== (hit?.kind || null) || before?.seatId !== hit?.seatId || before?.index !== hit?.index;
    if (!hit) {
      this.tooltip.hidden = true;
      this.canvas.style.cursor = "default";
    } else if (hit.kind === "section") {
      this.showTooltip(`${t("seats.section", { name: this.venue.sections[hit.index].name })} — ${t("seats.zoom.label")}`, x, y);
      this.canvas.style.cursor = "zoom-in";
    } else {
      const state = this.hooks.seatState(hit.seatId);
      this.showTooltip(`${this.venue.label(hit.seatId)} · ${t(`seat.status.${state}`)}`, x, y);
      this.canvas.style.cursor = state === "A" || state === "selected" ? "pointer" : "not-allowed";
    }
    if (changed) this.invalidate();
  }

  showTooltip(text, x, y) {
    const tip = this.tooltip;
    tip.textContent = text;
    tip.hidden = false;
    const maxX = this.layout.width - tip.offsetWidth - 4;
    tip.style.left = `${Math.max(4, Math.min(x + 14, maxX))}px`;
    tip.style.top = `${Math.max(4, y - tip.offsetHeight - 10)}px`;
  }

  handleClick(event) {
    const { x, y } = this.eventPoint(event);
    const hit = this.hitTest(x, y);
    if (!hit) return;
    if (hit.kind === "section") this.hooks.onSectionClick(hit.index);
    else this.hooks.onSeatClick(hit.seatId);
    this.setHover(this.hitTest(x, y), x, y);
  }
}
