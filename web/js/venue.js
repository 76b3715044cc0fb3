// The hall's layout (GET /api/venue, fetched once) and the arithmetic on seat ids:
// seat id = section.first_seat_id + (row-1)*cols + (col-1); label "B구역 7열 23번".
// Every section belongs to a grade (VIP, R, S, A …) with a price and a colour; a booking costs
// its seats' grade prices plus the booking fee per seat (the server charges the same sum).

import { api } from "./api.js";
import { t } from "./i18n.js";

const DEFAULT_PROVIDERS = ["mockpay", "fakecard"];

export class Venue {
  constructor(data) {
    this.grades = (Array.isArray(data.grades) ? data.grades : []).map((g) => ({
      name: String(g.name),
      price: Number(g.price),
      colour: /^#[0-9a-fA-F]{6}$/.test(g.colour || "") ? g.colour : null,
      sections: [...(g.sections || [])].map(String),
    }));
    const gradeBySection = new Map(this.grades.flatMap((g) => g.sections.map((name) => [name, g])));
    this.sections = [...data.sections]
      .map((s) => {
        const grade = gradeBySection.get(String(s.name)) || null;
        return {
          name: String(s.name),
          rows: s.rows,
          cols: s.cols,
          first_seat_id: s.first_seat_id,
          grade: grade ? grade.name : null,
          colour: grade ? grade.colour : null,
          price: grade ? grade.price : data.price_per_seat ?? null,
        };
      })
      .sort((a, b) => a.first_seat_id - b.first_seat_id);
    this.bookingFee = Number.isFinite(data.booking_fee) ? data.booking_fee : 0;
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

  /** "A구역 1열 25번" / "Section A, row 1, seat 25". */
  label(seatId) {
    const { section, row, col } = this.position(seatId);
    return t("seat.label", { section: section.name, row, col });
  }

  labels(seatIds) {
    return [...seatIds].sort((a, b) => a - b).map((id) => (this.isSeat(id) ? this.label(id) : `#${id}`));
  }

  /** The seat's grade {name, price, colour}, or null for a hall without grades. */
  gradeOf(seatId) {
    const { section } = this.position(seatId);
    return section.grade ? { name: section.grade, price: section.price, colour: section.colour } : null;
  }

  /** What these seats cost: per seat, the fee and the total (the server's domain.pricing sum). */
  quote(seatIds) {
    const seats = [...new Set(seatIds)]
      .filter((id) => this.isSeat(id))
      .sort((a, b) => a - b)
      .map((id) => {
        const { section } = this.position(id);
        return { id, label: this.label(id), grade: section.grade, price: section.price ?? 0 };
      });
    const seatsTotal = seats.reduce((sum, s) => sum + s.price, 0);
    const fee = this.bookingFee * seats.length;
    return { seats, seatsTotal, fee, total: seatsTotal + fee };
  }

  /** Seats still available in each section, counted from the seat map's status string. */
  availableBySection(status) {
    return this.sections.map((s) => {
      let n = 0;
      for (let id = s.first_seat_id, end = s.first_seat_id + s.rows * s.cols; id < end; id += 1) if (status.charCodeAt(id) === 65) n += 1;
      return n;
    });
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
