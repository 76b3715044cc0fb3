// Korean / English text, one language at a time. Korean unless the browser prefers English;
// the header's toggle switches and the choice is kept in localStorage.
// Elements made with `tr(el, key, params)` remember their key and are re-translated in place
// when the language changes, so switching never re-renders a screen or loses its state.

const LANG_KEY = "encore.lang";
const MODES = ["ko", "en"];

/** 183421 → "183,421" (the same grouping in both languages). */
export function num(n) {
  return Number(n || 0).toLocaleString("en-US");
}

const won = (n) => `${num(n)}원`;

// Times on the hall's clock (KST), Korean style in Korean. Kept here, as text entries, so that
// an element showing a time is re-translated like any other when the language changes.
const ZONE = "Asia/Seoul";
const MOMENT = { year: "numeric", month: "2-digit", day: "2-digit", hour: "numeric", minute: "2-digit", second: "2-digit" };
const SHOW_TIME = { year: "numeric", month: "long", day: "numeric", weekday: "short", hour: "numeric", minute: "2-digit" };

/** "2026년 12월 24일 (목) 오후 7:00": the show's start as Korean tickets print it. */
function showTimeKo(value) {
  const ms = typeof value === "number" ? value : Date.parse(value);
  if (value === null || value === undefined || value === "" || Number.isNaN(ms)) return "—";
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("ko-KR", { timeZone: ZONE, ...SHOW_TIME, month: "numeric" }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]),
  );
  return `${parts.year}년 ${parts.month}월 ${parts.day}일 (${parts.weekday}) ${parts.dayPeriod} ${parts.hour}:${parts.minute}`;
}

function when(locale, value, options) {
  const ms = typeof value === "number" ? value : Date.parse(value);
  if (value === null || value === undefined || value === "" || Number.isNaN(ms)) return "—";
  return new Intl.DateTimeFormat(locale, { timeZone: ZONE, ...options }).format(new Date(ms));
}

function durationKo(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}초`;
  const m = Math.floor(s / 60);
  const r = s % 60;
  if (m < 60) return r ? `${m}분 ${r}초` : `${m}분`;
  if (m < 24 * 60) return m % 60 ? `${Math.floor(m / 60)}시간 ${m % 60}분` : `${Math.floor(m / 60)}시간`;
  return `${Math.floor(m / 1440)}일 ${Math.floor((m % 1440) / 60)}시간`;
}

function durationEn(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  const r = s % 60;
  if (m < 60) return r ? `${m} min ${r} s` : `${m} min`;
  if (m < 24 * 60) return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${Math.floor(m / 60)} h`;
  return `${Math.floor(m / 1440)} d ${Math.floor((m % 1440) / 60)} h`;
}

const people = (n) => (n === 1 ? "person" : "people");
const SEAT_STATE_KO = { A: "선택 가능", H: "선점됨", S: "판매 완료", mine: "내 좌석", selected: "선택함", unknown: "확인 중" };
const SEAT_STATE_EN = { A: "available", H: "held", S: "sold", mine: "yours", selected: "selected", unknown: "loading" };

// key: [korean, english]; an entry may be a function of the params.
const TEXT = {
  "app.name": ["앙코르 티켓", "Encore Tickets"],
  "app.footer": ["앙코르 티켓 · 공연 예매 · 고객센터 1544-0000 (평일 09:00–18:00)", "Encore Tickets · concert booking · help 1544-0000 (weekdays 09:00–18:00)"],
  "app.tagline": ["단 하루의 공연, 한 자리의 기억", "One night, one seat to remember"],
  "nav.seats": ["좌석 선택", "Seats"],
  "nav.queue": ["대기실", "Waiting room"],
  "nav.bookings": ["내 예매", "My bookings"],
  "nav.logs.admin": ["예매 로그", "Booking log"],
  "nav.logs.mine": ["내 기록", "My activity"],
  "nav.logout": ["로그아웃", "Log out"],
  "nav.admin": ["관리자", "admin"],
  "lang.label": ["언어", "Language"],
  "lang.other": ["English", "한국어"],
  "lang.switch": ["Switch to English", "한국어로 보기"],
  "common.loading": ["불러오는 중…", "Loading…"],
  "common.close": ["닫기", "Close"],
  "common.retry": ["다시 시도", "Try again"],
  "common.not_found": ["페이지를 찾을 수 없습니다", "Page not found"],
  "common.go_home": ["처음으로", "Home"],

  "login.title": ["로그인", "Log in"],
  "login.intro": ["예매하려면 로그인해 주세요.", "Log in to book your seats."],
  "login.username": ["아이디", "Username"],
  "login.password": ["비밀번호", "Password"],
  "login.button": ["로그인", "Log in"],
  "login.welcome": [(p) => `${p.nickname} 님, 환영합니다!`, (p) => `Welcome, ${p.nickname}!`],
  "signup.title": ["회원가입", "Sign up"],
  "signup.intro": ["처음이신가요? 계정을 만들어 주세요.", "New here? Create an account."],
  "signup.nickname": ["닉네임", "Nickname"],
  "signup.button": ["가입하기", "Sign up"],
  "signup.done": [(p) => `가입을 환영합니다, ${p.nickname} 님!`, (p) => `Welcome aboard, ${p.nickname}!`],
  "auth.required": ["로그인이 필요합니다.", "Please log in first."],
  "auth.session_expired": ["로그인이 만료되었습니다. 다시 로그인해 주세요.", "Your session ended; please log in again."],
  "auth.logged_out": ["로그아웃했습니다.", "You are logged out."],

  "queue.title": ["대기실", "Waiting room"],
  "queue.joining": ["대기열에 들어가는 중…", "Joining the queue…"],
  "queue.ahead": [(p) => `앞에 ${num(p.n)}명`, (p) => `${num(p.n)} ${people(p.n)} ahead of you`],
  "queue.ahead_label": ["내 앞의 대기 인원", "people ahead of you"],
  "queue.place": [(p) => `앞에 ${num(p.ahead)}명, 뒤에 ${num(p.behind)}명`, (p) => `${num(p.ahead)} ahead of you, ${num(p.behind)} behind`],
  "queue.waiting": ["순서대로 입장 중입니다. 잠시만 기다려 주세요.", "People are let in in order; please wait a moment."],
  "queue.drawing_state": ["오픈과 동시에 순서가 정해집니다.", "Your place is drawn the moment sales open."],
  "queue.ahead_unit": ["명", ""],
  "queue.eta": [(p) => `예상 대기 시간 약 ${durationKo(p.seconds)}`, (p) => `Estimated wait: about ${durationEn(p.seconds)}`],
  "queue.behind": [(p) => `뒤에 ${num(p.n)}명`, (p) => `${num(p.n)} ${people(p.n)} behind you`],
  "queue.total": [(p) => `전체 대기 ${num(p.n)}명`, (p) => `${num(p.n)} waiting in all`],
  "queue.rate": [(p) => `1초에 약 ${num(p.n)}명씩 입장 중`, (p) => `About ${num(p.n)} admitted per second`],
  "queue.before_title": ["예매 오픈 전입니다", "Sales have not opened yet"],
  "queue.opens_in": ["예매 오픈까지", "Sales open in"],
  "queue.opens_at": [(p) => `오픈 일시 ${when("ko-KR", p.at, MOMENT)}`, (p) => `Opens ${when("en-GB", p.at, MOMENT)} KST`],
  "queue.before_opening": [
    (p) => `지금 ${num(p.n)}명이 오픈을 기다리고 있습니다. 오픈 전에 들어온 분들의 순서는 오픈 순간 무작위 추첨으로 정해지므로, 미리 들어와 있어도 불리하지 않습니다. 먼저 새로고침할 필요가 없어요.`,
    (p) => `${num(p.n)} ${p.n === 1 ? "person is" : "people are"} waiting for the opening. Everyone who arrives before it is put in a random order the moment sales open, so arriving early is no disadvantage and there is no need to refresh.`,
  ],
  "queue.progress": [(p) => `진행률 ${p.percent}%`, (p) => `${p.percent}% of the way`],
  "queue.hint": [
    "이 창을 닫거나 새로고침하지 마세요. 차례가 되면 자동으로 좌석 선택 화면으로 이동합니다.",
    "Keep this page open: when it is your turn you are taken to the seat map automatically.",
  ],
  "queue.ticket": [(p) => `대기 번호 ${p.ticket}`, (p) => `Ticket ${p.ticket}`],
  "queue.admitted": ["입장 차례입니다! 좌석 선택으로 이동합니다.", "It's your turn! Taking you to the seats."],
  "queue.admitted_back": ["입장 차례입니다! 예매를 이어서 진행해 주세요.", "It's your turn! Please carry on with your booking."],
  "queue.expired": ["대기 순서가 만료되었습니다. 다시 줄을 서 주세요.", "Your place in the queue expired. Please join again."],
  "queue.rejoin": ["다시 줄 서기", "Rejoin the queue"],
  "queue.need_admission": ["좌석을 선택하려면 먼저 대기실을 거쳐야 합니다.", "Please pass the waiting room before choosing seats."],
  "queue.retrying": ["연결이 불안정합니다. 다시 확인하는 중…", "Connection trouble; checking again…"],
  "admission.left": ["좌석 선택 남은 시간", "Time left to choose"],
  "admission.over": [
    "좌석 선택 시간이 끝났습니다. 공정한 예매를 위해 다시 대기열에 서 주세요.",
    "Your time to choose seats is over. To keep it fair for everyone, please join the line again.",
  ],
  "admission.rejoin": ["대기열로 돌아가기", "Back to the line"],

  "show.performer": ["출연", "Performer"],
  "show.when": ["공연 일시", "Date"],
  "show.venue": ["공연 장소", "Venue"],
  "show.running": ["관람 시간", "Running time"],
  "show.minutes": [(p) => `${num(p.n)}분`, (p) => `${num(p.n)} min`],
  "show.age": ["관람 등급", "Age rating"],

  "grade.name": [(p) => `${p.name}석`, (p) => `${p.name}`],
  "grade.price": [(p) => won(p.amount), (p) => `₩${num(p.amount)}`],
  "grade.left": [(p) => `잔여 ${num(p.n)}석`, (p) => `${num(p.n)} left`],
  "grade.legend": ["등급별 가격", "Prices by grade"],
  "section.chip": [(p) => `${p.name}구역`, (p) => `Section ${p.name}`],
  "seat.label": [(p) => `${p.section}구역 ${p.row}열 ${p.col}번`, (p) => `Section ${p.section}, row ${p.row}, seat ${p.col}`],
  "money": [(p) => won(p.amount), (p) => `₩${num(p.amount)}`],
  "fmt.datetime": [(p) => when("ko-KR", p.at, MOMENT), (p) => when("en-GB", p.at, MOMENT)],
  "fmt.show": [(p) => showTimeKo(p.at), (p) => `${when("en-GB", p.at, SHOW_TIME)} KST`],
  "price.seats": ["티켓 금액", "Tickets"],
  "price.fee": [(p) => `예매 수수료 (${num(p.n)}매)`, (p) => `Booking fee (${num(p.n)})`],
  "price.total": ["총 결제 금액", "Total"],
  "price.seat_line": [(p) => `${p.grade}석`, (p) => `${p.grade}`],
  "provider.mockpay": ["카카오페이", "KakaoPay"],
  "provider.fakecard": ["신용카드", "Credit card"],

  "seats.title": ["좌석 선택", "Choose your seats"],
  "seats.loading": ["좌석 배치도를 불러오는 중…", "Loading the seat map…"],
  "seats.stage": ["무대", "STAGE"],
  "seats.legend.label": ["좌석 상태", "Seat states"],
  "seats.legend.available": ["선택 가능", "Available"],
  "seats.legend.held": ["선점됨", "Held"],
  "seats.legend.sold": ["판매 완료", "Sold"],
  "seats.legend.mine": ["내 좌석", "Mine"],
  "seats.legend.selected": ["선택함", "Selected"],
  "seats.zoom.all": ["전체 보기", "Whole hall"],
  "seats.zoom.label": ["구역 확대", "Zoom into a section"],
  "seats.zoom.hint": ["구역 이름을 누르면 확대됩니다.", "Click a section name to zoom in."],
  "seats.section": [(p) => `${p.name}구역`, (p) => `Section ${p.name}`],
  "seats.selected": ["선택한 좌석", "Selected seats"],
  "seats.none": ["배치도에서 좌석을 눌러 선택하세요.", "Click seats on the map to pick them."],
  "seats.count": [(p) => `${p.n} / ${p.max}석`, (p) => `${p.n} of ${p.max} seats`],
  "seats.total": [(p) => `합계 ${p.amount}`, (p) => `Total ${p.amount}`],
  "seats.hold": ["좌석 선점", "Hold seats"],
  "seats.holding": ["선점하는 중…", "Holding…"],
  "seats.clear": ["선택 해제", "Clear"],
  "seats.hold_rule": [
    (p) => `선점 후 ${durationKo(p.seconds)} 안에 결제해야 합니다.`,
    (p) => `After holding you have ${durationEn(p.seconds)} to pay.`,
  ],
  "seats.taken": [
    (p) => `다른 분이 먼저 선택했습니다: ${p.labels}`,
    (p) => `someone else took ${p.labels}`,
  ],
  "seats.not_available": [
    (p) => `${p.label} 좌석은 선택할 수 없습니다 (${SEAT_STATE_KO[p.state] || p.state}).`,
    (p) => `${p.label} cannot be picked (${SEAT_STATE_EN[p.state] || p.state}).`,
  ],
  "seats.max": [
    (p) => `한 사람당 최대 ${p.max}석까지 예매할 수 있습니다.`,
    (p) => `One member may book at most ${p.max} seats.`,
  ],
  "seats.max_owned": [
    (p) => `이미 ${p.owned}석을 보유 중이어서 ${p.left}석만 더 고를 수 있습니다 (최대 ${p.max}석).`,
    (p) => `You already have ${p.owned} seats, so you can pick ${p.left} more (at most ${p.max}).`,
  ],
  "seats.one_section": [
    (p) => `한 예매의 좌석은 같은 구역에서 골라 주세요 (지금 선택: ${p.name}).`,
    (p) => `Seats of one booking must be in one section (you are picking in ${p.name}).`,
  ],
  "seats.refresh_failed": ["좌석 현황을 새로 고치지 못했습니다. 다시 시도하는 중…", "Could not refresh the seat map; retrying…"],
  "seats.live_booking": ["결제를 기다리는 선점이 있습니다.", "You have a hold waiting for payment."],
  "seats.continue": ["결제하러 가기", "Continue to payment"],
  "seats.not_ready": ["좌석 배치도가 아직 준비되지 않았습니다.", "The seat map is not ready yet."],
  "seats.unknown_seat": [(p) => `없는 좌석 번호입니다: ${p.id}`, (p) => `No seat with id ${p.id}`],
  "seat.status.A": ["선택 가능", "available"],
  "seat.status.H": ["선점됨", "held"],
  "seat.status.S": ["판매 완료", "sold"],
  "seat.status.mine": ["내 좌석", "yours"],
  "seat.status.selected": ["선택함", "selected"],
  "seat.status.unknown": ["확인 중", "loading"],

  "booking.title": ["예매 내역", "Your booking"],
  "booking.title_checkout": ["결제하기", "Checkout"],
  "booking.title_done": ["예매 완료", "Booking complete"],
  "booking.id": ["예매번호", "Booking no."],
  "booking.grade": ["등급", "Grade"],
  "booking.price": ["가격", "Price"],
  "booking.seats": ["좌석", "Seats"],
  "booking.amount": ["금액", "Amount"],
  "booking.expires": ["결제 기한", "Pay by"],
  "booking.created": ["예매 시각", "Booked at"],
  "booking.countdown": ["남은 시간", "Time left"],
  "booking.provider": ["결제 수단", "Payment method"],
  "booking.pay": ["결제하기", "Pay"],
  "booking.paying": ["결제 준비 중…", "Starting payment…"],
  "booking.release": ["선점 취소", "Release"],
  "booking.releasing": ["취소하는 중…", "Releasing…"],
  "booking.released": ["선점을 취소했습니다. 좌석이 다시 판매됩니다.", "Hold released; the seats are free again."],
  "booking.pending": ["결제 결과를 확인하는 중입니다…", "Checking the payment result…"],
  "booking.pending_link": ["결제 페이지로 돌아가기", "Back to the payment page"],
  "booking.redirecting": ["결제 페이지로 이동합니다…", "Taking you to the payment page…"],
  "booking.expired_now": ["시간이 만료되었습니다", "Your hold expired"],
  "booking.expired_detail": [
    "결제 시간이 지나 좌석이 반환되었습니다. 좌석을 다시 골라 주세요.",
    "The time to pay ran out and the seats were released. Please choose again.",
  ],
  "booking.choose_again": ["좌석 다시 고르기", "Choose seats again"],
  "booking.to_list": ["내 예매 보기", "See my bookings"],
  "booking.not_found": ["예매를 찾을 수 없습니다.", "Booking not found."],
  "booking.payment": ["결제", "Payment"],
  "status.held": ["선점 중 · 결제 대기", "Held · awaiting payment"],
  "status.confirmed": ["예매 확정", "Confirmed"],
  "status.payment_failed": ["결제 실패", "Payment failed"],
  "status.expired": ["시간 만료", "Expired"],
  "status.cancelled": ["선점 취소", "Cancelled"],
  "status.refunded": ["환불됨", "Refunded"],
  "booking.desc.held": [
    "아래 시간 안에 결제를 마쳐 주세요. 시간이 지나면 좌석은 자동으로 반환됩니다.",
    "Please pay before the timer runs out; after that the seats are released automatically.",
  ],
  "booking.desc.confirmed": ["예매가 확정되었습니다. 즐거운 공연 되세요!", "Your booking is confirmed. Enjoy the show!"],
  "booking.desc.payment_failed": [
    "결제가 완료되지 않아 좌석이 반환되었습니다. 다시 시도해 주세요.",
    "The payment did not go through, so the seats were released. Please try again.",
  ],
  "booking.desc.expired": [
    "시간이 만료되었습니다. 결제 기한이 지나 좌석이 반환되었습니다.",
    "Your hold expired: the time to pay ran out and the seats were released.",
  ],
  "booking.desc.cancelled": ["선점을 취소했습니다. 좌석은 다시 판매됩니다.", "You released this hold; the seats are on sale again."],
  "booking.desc.refunded": [
    "결제가 좌석 반환 후에 도착해 좌석을 드릴 수 없었습니다. 결제 금액은 환불됩니다.",
    "The payment arrived after the seats had been released, so it is refunded.",
  ],
  "payment.status.pending": ["확인 중", "pending"],
  "payment.status.succeeded": ["성공", "succeeded"],
  "payment.status.failed": ["실패", "failed"],
  "payment.status.refunded": ["환불", "refunded"],

  "bookings.title": ["내 예매", "My bookings"],
  "bookings.empty": ["아직 예매 내역이 없습니다.", "No bookings yet."],
  "bookings.col.id": ["예매번호 · 예매일", "Booking no. · date"],
  "bookings.col.seats": ["좌석", "Seats"],
  "bookings.col.price": ["금액", "Amount"],
  "bookings.col.status": ["상태", "Status"],
  "bookings.col.payment": ["결제", "Payment"],
  "bookings.unpaid": ["결제 전", "not paid"],
  "bookings.open": ["보기", "Open"],

  "logs.title.admin": ["예매 로그", "Booking log"],
  "logs.title.mine": ["내 기록", "My activity"],
  "logs.intro.admin": ["모든 예매 관련 이벤트를 조회합니다.", "Every booking event, searchable."],
  "logs.intro.mine": ["내 예매와 관련된 이벤트입니다.", "The events of your own bookings."],
  "logs.f.booking_id": ["예매 번호", "Booking id"],
  "logs.f.member_id": ["회원 번호", "Member no."],
  "logs.f.seat_id": ["좌석 번호 (ID)", "Seat id"],
  "logs.f.type": ["이벤트 종류", "Event type"],
  "logs.f.since": ["시작 시각", "Since"],
  "logs.f.until": ["종료 시각", "Until"],
  "logs.f.all": ["전체", "All"],
  "logs.search": ["조회", "Search"],
  "logs.export": ["CSV 내보내기", "Export CSV"],
  "detail.provider": [(p) => `결제 수단 ${p.name}`, (p) => `paid with ${p.name}`],
  "detail.payment_id": [(p) => `결제 번호 ${p.id}`, (p) => `payment ${p.id}`],
  "detail.deadline": ["결제 기한", "pay by"],
  "detail.regranted_from": [(p) => `${p.status} 후 좌석 재배정`, (p) => `seats granted again after ${p.status}`],
  "detail.refunded_from": [(p) => `환불 사유: ${p.status}`, (p) => `refunded: ${p.status}`],
  "detail.booking_status": [(p) => `예매 상태: ${p.status}`, (p) => `booking ${p.status}`],
  "detail.paid_by": [(p) => `먼저 결제된 건 ${p.id}`, (p) => `already paid by ${p.id}`],
  "detail.ticket": [(p) => `대기 번호 ${num(p.n)}`, (p) => `ticket ${num(p.n)}`],
  "detail.why.already_paid": ["이미 결제됨", "already paid"],
  "detail.why.completed": ["예매 완료", "booking completed"],
  "detail.why.left": ["스스로 나감", "left the line"],
  "detail.reason": [(p) => `사유: ${p.why}`, (p) => `reason: ${p.why}`],
  "dash.seats": ["등급별 좌석 현황", "Seats by grade"],
  "dash.payments": ["결제 현황", "Payments by status"],
  "dash.col.grade": ["등급", "Grade"],
  "dash.col.sold": ["판매", "Sold"],
  "dash.col.held": ["선점", "Held"],
  "dash.col.available": ["잔여", "Available"],
  "dash.col.revenue": ["판매 금액", "Revenue"],
  "dash.col.status": ["상태", "Status"],
  "dash.col.count": ["건수", "Count"],
  "dash.col.amount": ["금액", "Amount"],
  "dash.n": [(p) => `${num(p.n)}석`, (p) => num(p.n)],
  "dash.count": [(p) => `${num(p.n)}건`, (p) => num(p.n)],
  "dash.no_payments": ["아직 결제가 없습니다.", "No payments yet."],
  "logs.reset": ["초기화", "Reset"],
  "logs.next": ["다음 페이지", "Next page"],
  "logs.first": ["첫 페이지", "First page"],
  "logs.page": [(p) => `${p.n}페이지 · ${p.count}건`, (p) => `Page ${p.n} · ${p.count} events`],
  "logs.empty": ["조건에 맞는 기록이 없습니다.", "No events match."],
  "logs.col.at": ["시각 (KST)", "Time (KST)"],
  "logs.col.type": ["종류", "Type"],
  "logs.col.booking": ["예매", "Booking"],
  "logs.col.member": ["아이디", "Member"],
  "logs.col.seats": ["좌석", "Seats"],
  "logs.col.detail": ["상세", "Detail"],
  "event.hold_created": ["선점 생성", "Hold created"],
  "event.hold_cancelled": ["선점 취소", "Hold cancelled"],
  "event.hold_expired": ["선점 만료", "Hold expired"],
  "event.payment_started": ["결제 시작", "Payment started"],
  "event.payment_succeeded": ["결제 성공", "Payment succeeded"],
  "event.payment_failed": ["결제 실패", "Payment failed"],
  "event.booking_confirmed": ["예매 확정", "Booking confirmed"],
  "event.payment_refunded": ["결제 환불", "Payment refunded"],
  "event.queue_joined": ["대기열 입장", "Joined the queue"],
  "event.queue_admitted": ["입장 허용", "Admitted"],
  "event.queue_left": ["대기열 이탈", "Left the queue"],
  "event.queue_admission_expired": ["입장 만료", "Admission expired"],

  "error.seat_unavailable": ["선택한 좌석 중 이미 다른 분이 선점한 좌석이 있습니다.", "Some of those seats were just taken by someone else."],
  "error.too_many_seats": [
    (p) => `한 사람당 예매할 수 있는 좌석 수${p.max ? `(${p.max}석)` : ""}를 넘었습니다.`,
    (p) => `That is more seats than one member may hold${p.max ? ` (${p.max})` : ""}.`,
  ],
  "error.seats_span_blocks": ["한 예매의 좌석은 같은 구역에 있어야 합니다.", "Seats of one booking must lie in one section."],
  "error.invalid_seats": ["잘못된 좌석 선택입니다.", "Those seats are not valid."],
  "error.not_admitted": [
    "입장 차례가 아니거나 입장 시간이 끝났습니다. 대기실로 이동합니다.",
    "You are not admitted (or your admission ended). Back to the waiting room.",
  ],
  "error.bad_credentials": ["아이디 또는 비밀번호가 올바르지 않습니다.", "Wrong username or password."],
  "error.username_taken": ["이미 사용 중인 아이디입니다.", "That username is already taken."],
  "error.idempotency_in_flight": [
    "같은 요청을 처리하는 중입니다. 잠시만 기다려 주세요.",
    "The same request is still being processed; please wait a moment.",
  ],
  "error.idempotency_key_reused": [
    "이전 요청과 내용이 달라 처리할 수 없습니다. 다시 시도해 주세요.",
    "This retry differs from the original request; please try again.",
  ],
  "error.rate_limited": [
    (p) => `요청이 너무 많습니다. ${p.seconds ? `${p.seconds}초 후 ` : "잠시 후 "}다시 시도해 주세요.`,
    (p) => `Too many requests; please try again ${p.seconds ? `in ${p.seconds} s` : "shortly"}.`,
  ],
  "error.validation_error": ["입력한 내용을 확인해 주세요.", "Please check what you entered."],
  "error.booking_not_found": ["예매를 찾을 수 없습니다.", "Booking not found."],
  "error.not_found": ["찾을 수 없습니다.", "Not found."],
  "error.booking_not_held": ["이미 처리된 예매입니다 (선점 상태가 아님).", "This booking is no longer held."],
  "error.payment_in_progress": ["이미 진행 중인 결제가 있습니다.", "A payment for this booking is already in progress."],
  "error.unknown_provider": ["지원하지 않는 결제 수단입니다.", "Unknown payment provider."],
  "error.unauthorized": ["다시 로그인해 주세요.", "Please log in again."],
  "error.forbidden": ["권한이 없습니다.", "You are not allowed to do that."],
  "error.conflict": ["요청이 현재 상태와 맞지 않습니다. 새로 고친 뒤 다시 시도해 주세요.", "That conflicts with the current state; refresh and try again."],
  "error.store_unavailable": [
    "일시적으로 예매를 처리할 수 없습니다. 잠시 후 다시 시도해 주세요.",
    "Bookings are briefly unavailable; please try again shortly.",
  ],
  "error.network_error": ["서버에 연결할 수 없습니다. 네트워크를 확인해 주세요.", "Cannot reach the server; please check your connection."],
  "error.server_error": ["서버에 문제가 생겼습니다. 잠시 후 다시 시도해 주세요.", "Something went wrong on our side; please try again shortly."],
  "error.unexpected": ["예기치 못한 오류가 발생했습니다.", "Something unexpected happened."],
};

function browserLang() {
  if (typeof navigator === "undefined") return "ko";
  const wanted = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "ko"])[0] || "ko";
  return String(wanted).toLowerCase().startsWith("en") ? "en" : "ko";
}

let mode = (() => {
  try {
    const saved = globalThis.localStorage?.getItem(LANG_KEY);
    return MODES.includes(saved) ? saved : browserLang();
  } catch {
    return browserLang();
  }
})();

export const langModes = MODES;

export function getLang() {
  return mode;
}

function render(entry, params) {
  return typeof entry === "function" ? entry(params || {}) : entry;
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(TEXT, key);
}

/** The text for `key` in the current language. */
export function t(key, params) {
  const entry = TEXT[key];
  if (!entry) return key;
  return render(entry[mode === "en" ? 1 : 0], params);
}

/** Set `el`'s text to `t(key, params)` and remember the key so a language switch updates it. */
export function tr(el, key, params) {
  el.dataset.i18n = key;
  if (params) el.dataset.i18nParams = JSON.stringify(params);
  else delete el.dataset.i18nParams;
  el.textContent = t(key, params);
  return el;
}

/** Same as `tr` for an attribute (placeholder, title, aria-label). */
export function trAttr(el, attr, key, params) {
  el.dataset.i18nAttr = `${attr}:${key}`;
  if (params) el.dataset.i18nAttrParams = JSON.stringify(params);
  el.setAttribute(attr, t(key, params));
  return el;
}

function retranslate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    const params = el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : undefined;
    el.textContent = t(el.dataset.i18n, params);
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    const [attr, key] = el.dataset.i18nAttr.split(/:(.*)/s);
    const params = el.dataset.i18nAttrParams ? JSON.parse(el.dataset.i18nAttrParams) : undefined;
    el.setAttribute(attr, t(key, params));
  }
}

const listeners = new Set();

/** Called after every language switch (for text drawn on the canvas, for instance). */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function setLang(next) {
  if (!MODES.includes(next)) return;
  mode = next;
  try {
    localStorage.setItem(LANG_KEY, next);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  document.documentElement.lang = next;
  retranslate(document);
  for (const fn of listeners) fn(next);
}

export function durationText(seconds) {
  return mode === "en" ? durationEn(seconds) : durationKo(seconds);
}

export const EVENT_TYPES = [
  "hold_created",
  "hold_cancelled",
  "hold_expired",
  "payment_started",
  "payment_succeeded",
  "payment_failed",
  "booking_confirmed",
  "payment_refunded",
  "queue_joined",
  "queue_admitted",
];
