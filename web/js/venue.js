// The hall's layout (GET /api/venue, fetched once) and the arithmetic on seat ids:
// seat id = section.first_seat_id + (row-1)*cols + (col-1); label "B-07-23".

import { api } from "./api.js";

const DEFAULT_PROVIDERS = ["mockpay", "fakecard"];

export class Venue {
  constructor(data) {
    this.sections = [...data.sections]
      .map((s) => ({ name: String(s.name), rows: s.rows, cols: s.cols, first_seat_id: s.first_seat_id }))
      .sort((a, b) => a.first_seat_id - b.first_seat_id);
    this.seats = data.seats ?? this.sections.reduce((sum, s) => sum + s.rows * s.cols, 0);
    this.holdSeconds = data.hold_seconds ?? 180;
    this.maxSeatsPerMember = data.max_seats_per_member ?? 4;
    this.pricePerSeat = data.price_per_seat ?? null;
    this.providers = Array.isArray(data.providers) && data.providers.length ? data.providers.map(providerName) : DEFAULT_PROVIDERS;
    // The server splits each section into blocks of `block_rows` whole rows and refuses a
    // booking across blocks (seats_span_blocks). Without `block_rows` the block is the section.
    this.blockRows = Number.isInteger(data.block_rows) && data.block_rows > 0 ? data.block_rows : null;
  }

  sectionIndexOf(seatId) {
    let lo = 0;
    let hi = this.sections.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.sections[mid].first_seat_id <= seatId) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  isSeat(seatId) {
    return Number.isInteger(seatId) && seatId >= 0 && seatId < this.seats;
  }

  /** {section, sectionIndex, row, col} with row and col counted from 1. */
  position(seatId) {
    const sectionIndex = this.sectionIndexOf(seatId);
    const section = this.sections[sectionIndex];
    const offset = seatId - section.first_seat_id;
    return { section, sectionIndex, row: Math.floor(offset / section.cols) + 1, col: (offset % section.cols) + 1 };
  }

  seatId(sectionIndex, row, col) {
    const section = this.sections[sectionIndex];
    return section.first_seat_id + (row - 1) * section.cols + (col - 1);
  }

  label(seatId) {
    const { section, row, col } = this.position(seatId);
    return `${section.name}-${String(row).padStart(2, "0")}-${String(col).padStart(2, "0")}`;
  }

  labels(seatIds) {
    return [...seatIds].sort((a, b) => a - b).map((id) => (this.isSeat(id) ? this.label(id) : `#${id}`));
  }

  /** Seats of one booking must share this key (their section, or their block of rows). */
  groupOf(seatId) {
    const { section, row } = this.position(seatId);
    if (!this.blockRows || this.blockRows >= section.rows) return section.name;
    return `${section.name}:${Math.floor((row - 1) / this.blockRows)}`;
  }

  /** Human name of a group: "B" or "B 1–10". */
  groupName(seatId) {
    const { section, row } = this.position(seatId);
    if (!this.blockRows || this.blockRows >= section.rows) return section.name;
    const first = Math.floor((row - 1) / this.blockRows) * this.blockRows + 1;
    return `${section.name} ${first}–${Math.min(section.rows, first + this.blockRows - 1)}`;
  }
}

function providerName(provider) {
  return typeof provider === "string" ? provider : provider.name || provider.id;
}

let cached = null;

/** The venue, fetched once per page load. */
export function loadVenue() {
  if (!cached) {
    cached = api.venue().then(
      ({ data }) => new Venue(data),
      (error) => {
        cached = null;
        throw error;
      },
    );
  }
  return cached;
}
