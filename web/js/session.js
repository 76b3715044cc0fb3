// What the page remembers about the visitor.
//   localStorage:   the bearer token and the member (survive a browser restart)
//   sessionStorage: the queue ticket and the admission token (this tab only; an admission is
//                   bound to one member and expires on the server anyway)

const TOKEN = "encore.token";
const MEMBER = "encore.member";
const ADMISSION = "encore.admission";
const QUEUE = "encore.queue";
const AFTER_ADMISSION = "encore.afterAdmission";
const RETURN_TO = "encore.returnTo";

function read(storage, key) {
  try {
    const raw = storage.getItem(key);
    return raw == null ? null : JSON.parse(raw);
  } catch {
    return null;
  }
}

function write(storage, key, value) {
  try {
    if (value == null) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: the page still works until reload */
  }
}

export function token() {
  return read(localStorage, TOKEN);
}

export function member() {
  return read(localStorage, MEMBER);
}

export function isAdmin() {
  return member()?.role === "admin";
}

export function setSession(newToken, newMember) {
  const previous = member();
  if (!previous || previous.id !== newMember.id) clearQueueState();
  write(localStorage, TOKEN, newToken);
  write(localStorage, MEMBER, newMember);
}

export function setMember(newMember) {
  write(localStorage, MEMBER, newMember);
}

export function clearSession() {
  write(localStorage, TOKEN, null);
  write(localStorage, MEMBER, null);
  clearQueueState();
}

/** The admission token for the current member, or null. */
export function admissionToken() {
  const saved = read(sessionStorage, ADMISSION);
  const me = member();
  if (!saved || !me || saved.member_id !== me.id) return null;
  return saved.token;
}

/** `until`: when the admission ends (ISO, the claim's admitted_until), if known. */
export function setAdmissionToken(value, until = null) {
  const me = member();
  write(sessionStorage, ADMISSION, value && me ? { token: value, member_id: me.id, until } : null);
}

/** When the current admission ends (ISO), or null when unknown. */
export function admissionUntil() {
  const saved = read(sessionStorage, ADMISSION);
  const me = member();
  if (!saved || !me || saved.member_id !== me.id) return null;
  return saved.until || null;
}

export function clearAdmission() {
  write(sessionStorage, ADMISSION, null);
}

/** `{ticket, ahead_at_join}` of the queue this tab joined, for the current member. */
export function queueState() {
  const saved = read(sessionStorage, QUEUE);
  const me = member();
  if (!saved || !me || saved.member_id !== me.id) return null;
  return saved;
}

export function setQueueState(ticket, aheadAtJoin) {
  const me = member();
  write(sessionStorage, QUEUE, me ? { ticket, ahead_at_join: aheadAtJoin, member_id: me.id } : null);
}

export function clearQueueState() {
  write(sessionStorage, QUEUE, null);
  write(sessionStorage, ADMISSION, null);
  write(sessionStorage, AFTER_ADMISSION, null);
}

/** Where the waiting room sends the visitor once admitted (default: the seat map). */
export function afterAdmission() {
  return read(sessionStorage, AFTER_ADMISSION);
}

export function setAfterAdmission(hash) {
  write(sessionStorage, AFTER_ADMISSION, hash);
}

/** Where to go after logging in (the page the visitor was sent away from). */
export function takeReturnTo() {
  const hash = read(sessionStorage, RETURN_TO);
  write(sessionStorage, RETURN_TO, null);
  return hash;
}

export function setReturnTo(hash) {
  write(sessionStorage, RETURN_TO, hash);
}
