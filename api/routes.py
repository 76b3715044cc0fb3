"""The HTTP edge: every route of docs/API.md, translating HTTP to ``BookingService`` and back."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from api import models
from api.auth import Caller, hash_password, password_matches
from api.errors import ApiError
from api.hot_routes import (
    TICKET_CHARS_MAX, admitted_writer, constant_answer, hold_once, queue_answer, queue_status_answer, seat_map_answer,
    service,
)
from api.idempotency import request_fingerprint
from api.models import iso
from api.ratelimit import client_address
from api.service import BookingService
from domain.booking import Booking, booking_number
from domain.dashboard import log_csv, seats_by_grade
from domain.payment import Payment
from payments import CHECKOUT_PAGE_HEADERS, SIGNATURE_HEADER, CallbackPayloadError, SignatureError, read_callback, render_checkout_page
from persistence import Conflict
from persistence.records import LOG_PAGE_DEFAULT, LOG_PAGE_MAX, LogQuery

router = APIRouter()


def parse_time(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be an ISO-8601 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


async def caller(authorization: Annotated[str | None, Header()] = None) -> Caller:
    return (await service()).tokens.caller(authorization)


async def writer(authorization: Annotated[str | None, Header()] = None,
                 x_admission_token: Annotated[str | None, Header()] = None) -> Caller:
    return admitted_writer(await service(), authorization, x_admission_token)


Service = Annotated[BookingService, Depends(service)]
Authenticated = Annotated[Caller, Depends(caller)]
Writer = Annotated[Caller, Depends(writer)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def member_out(member) -> models.MemberOut:
    return models.MemberOut(id=member.id, username=member.username, nickname=member.nickname, role=member.role)


def booking_out(svc: BookingService, booking: Booking, payment: Payment | None = None,
                seq: int | None = None) -> models.BookingOut:
    return models.BookingOut(
        booking_id=booking.booking_id,
        booking_number=booking_number(seq, booking.created_at) if seq is not None else None,
        member_id=booking.member_id,
        seat_ids=list(booking.seat_ids),
        seat_labels=[svc.venue.label(s) for s in booking.seat_ids],
        status=booking.status.value,
        created_at=iso(booking.created_at),
        expires_at=iso(booking.expires_at),
        payment=payment_out(payment) if payment else None,
    )


def payment_out(payment: Payment) -> models.PaymentOut:
    return models.PaymentOut(
        payment_id=payment.payment_id, provider=payment.provider, status=payment.status.value, amount=payment.amount,
        redirect_url=f"/pg/{payment.provider}/checkout/{payment.payment_id}",
    )


# ---- members and sessions

@router.post("/api/members", status_code=201, response_model=models.MemberOut, tags=["members"])
async def sign_up(body: models.SignUp, svc: Service):
    try:
        member = await svc.store.create_member(body.username, body.nickname, await hash_password(body.password), "user", time.time())
    except Conflict:
        raise ApiError(409, "username_taken", "that username is taken") from None
    return member_out(member)


@router.post("/api/sessions", response_model=models.SessionOut, tags=["members"],
             responses={429: {"model": models.Problem, "description": "too many failed logins; see Retry-After"}})
async def log_in(body: models.Login, request: Request, svc: Service):
    address = client_address(request.client.host if request.client else None,
                             ",".join(request.headers.getlist("x-forwarded-for")), request.headers.get("x-real-ip"))
    svc.login_throttle.attempt(body.username, address, time.time())
    member = await svc.store.member_by_username(body.username)
    if not await password_matches(member.password_hash if member else None, body.password) or member is None:
        raise ApiError(401, "bad_credentials", "wrong username or password")
    svc.login_throttle.succeeded(body.username, address)
    return models.SessionOut(token=svc.tokens.session(member.id, member.role), member=member_out(member))


@router.get("/api/me", response_model=models.MemberOut, tags=["members"])
async def me(who: Authenticated, svc: Service):
    member = await svc.store.member_by_id(who.member_id)
    if member is None:
        raise ApiError(401, "unauthorized", "this member no longer exists")
    return member_out(member)


# ---- the waiting queue

@router.post("/api/queue", response_model=models.QueueOut, tags=["queue"])
async def join_queue(who: Authenticated, svc: Service):
    return (await svc.join_queue(who)).out()


@router.get("/api/queue", response_model=models.QueueOut, tags=["queue"])
async def poll_queue(ticket: Annotated[str, Query(min_length=1, max_length=TICKET_CHARS_MAX)],
                     authorization: Annotated[str | None, Header()] = None):
    """Declared here for the schema; ``api.hot_routes.HotRoutes`` answers it with ``queue_answer``."""
    return await queue_answer(authorization, ticket)


@router.get("/api/queue/status", response_model=models.QueueStatusOut, tags=["queue"],
            responses={304: {"description": "the status has not changed since the ETag sent in If-None-Match"}})
async def queue_status(if_none_match: Annotated[str | None, Header()] = None):
    """Declared here for the schema; ``api.hot_routes.HotRoutes`` answers it with ``queue_status_answer``."""
    return await queue_status_answer(if_none_match)


@router.post("/api/queue/admission", response_model=models.AdmissionOut, tags=["queue"],
             responses={409: {"model": models.Problem}, 403: {"model": models.Problem}})
async def claim_admission(body: models.AdmissionIn, who: Authenticated, svc: Service):
    """Once the public status shows the caller's number admitted: its admission token.
    Before its turn 409 ``not_your_turn`` (with the place), after its admission ran out 409
    ``admission_expired`` (join again: the place at the end of the line comes back)."""
    answer, admitted_until = await svc.claim_admission(who, body.ticket)
    if answer.state == "waiting":
        raise ApiError(409, "not_your_turn", f"{answer.ahead} people are ahead of you", ticket=answer.ticket,
                       ahead=answer.ahead, eta_seconds=answer.eta_seconds, poll_after_ms=answer.poll_after_ms)
    if answer.state == "expired":
        raise ApiError(409, "admission_expired", "your admission ran out; join the queue again for a new place")
    return models.AdmissionOut(state="admitted", ticket=answer.ticket, admission_token=answer.admission_token,
                               admitted_until=iso(admitted_until))


# ---- the show, venue and seats

@router.get("/api/show", response_model=models.ShowOut, tags=["seats"])
async def show(svc: Service, response: Response):
    """The one show on sale: title, performer, start (UTC), hall, running time, age rating, poster."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return svc.show_out


@router.get("/api/venue", response_model=models.VenueOut, tags=["seats"])
async def venue(svc: Service, response: Response):
    response.headers["Cache-Control"] = "public, max-age=3600"
    return svc.venue_out


@router.get("/api/seats", response_model=models.SeatsOut, tags=["seats"],
            responses={304: {"description": "the map has not changed since the ETag sent in If-None-Match"}})
async def seats(if_none_match: Annotated[str | None, Header()] = None,
                accept_encoding: Annotated[str | None, Header()] = None):
    """Declared here for the schema; ``api.hot_routes.HotRoutes`` answers it with ``seat_map_answer``."""
    return await seat_map_answer(if_none_match, accept_encoding)


# ---- holds, bookings, payments

@router.post("/api/holds", status_code=201, response_model=models.HoldOut, tags=["bookings"],
             responses={409: {"model": models.Problem}, 422: {"model": models.Problem}})
async def hold(body: models.HoldIn, who: Writer, svc: Service, key: IdempotencyKey = None):
    """Declared here for the schema; ``api.hot_routes.HotRoutes`` answers it with ``hold_answer``."""
    return await hold_once(svc, who, body, key)


@router.delete("/api/holds/{booking_id}", response_model=models.CancelOut, tags=["bookings"])
async def release(booking_id: Annotated[str, Path(max_length=32)], who: Authenticated, svc: Service):
    booking = await svc.cancel(who.member_id, booking_id)
    return models.CancelOut(booking_id=booking.booking_id, status=booking.status.value)


@router.post("/api/bookings/{booking_id}/payments", status_code=201, response_model=models.PaymentOut, tags=["payments"])
async def pay(booking_id: str, body: models.PaymentIn, request: Request, who: Writer, svc: Service, key: IdempotencyKey = None):
    async def work():
        payment = await svc.start_payment(who.member_id, booking_id, body.provider)
        return 201, payment_out(payment).model_dump()

    path = f"/api/bookings/{booking_id}/payments"
    fingerprint = request_fingerprint("POST", path, body.model_dump())
    return await svc.idempotency.run_once(who.member_id, key, fingerprint, work)


@router.get("/api/bookings/{booking_id}", response_model=models.BookingOut, tags=["bookings"])
async def booking(booking_id: str, who: Authenticated, svc: Service):
    view = await svc.booking(booking_id, who.member_id, who.is_admin)
    seqs = await svc.store.booking_seqs([view.booking.booking_id])
    return booking_out(svc, view.booking, view.payment, seqs.get(view.booking.booking_id))


@router.get("/api/me/bookings", response_model=models.BookingsOut, tags=["bookings"])
async def my_bookings(who: Authenticated, svc: Service):
    bookings = await svc.store.member_bookings(who.member_id)
    ids = [b.booking_id for b in bookings]
    seqs = await svc.store.booking_seqs(ids)
    payments = await svc.store.latest_payments(ids)
    return models.BookingsOut(bookings=[booking_out(svc, b, payments.get(b.booking_id), seqs.get(b.booking_id))
                                        for b in bookings])


# ---- mock payment providers

@router.get("/pg/{provider}/checkout/{payment_id}", response_class=HTMLResponse, tags=["providers"])
async def checkout_page(provider: str, payment_id: str, svc: Service,
                        lang: Annotated[Literal["ko", "en"], Query(description="the page's language")] = "ko"):
    payment = await svc.payment_of(provider, payment_id)
    found = await svc.store.booking(payment.booking_id)
    labels = [svc.venue.spoken_label(s, lang) for s in found[0].seat_ids] if found else []
    page = render_checkout_page(svc.providers[provider], payment.payment_id, payment.amount, labels,
                                f"/#/bookings/{payment.booking_id}", lang, svc.show_out.title)
    return HTMLResponse(page, headers=CHECKOUT_PAGE_HEADERS)


@router.post("/pg/{provider}/checkout/{payment_id}", response_model=models.CheckoutOut, tags=["providers"])
async def checkout(provider: str, payment_id: str, body: models.CheckoutIn, svc: Service):
    result = await svc.mock_providers.checkout(await svc.payment_of(provider, payment_id), body.result)
    return models.CheckoutOut(delivered=result.delivered, status=result.status)


@router.post("/api/payments/{provider}/callback", response_model=models.CallbackOut, tags=["payments"],
             openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}})
async def payment_callback(provider: str, request: Request, svc: Service):
    if provider not in svc.providers:
        raise ApiError(404, "unknown_provider", "no such payment provider")
    raw = await request.body()
    try:
        payload = read_callback(svc.providers[provider], raw, request.headers.get(SIGNATURE_HEADER), time.time(),
                                svc.settings.callback_tolerance_seconds)
    except SignatureError as error:
        raise ApiError(401, "bad_signature", f"the callback signature is {error.reason}") from None
    except CallbackPayloadError as error:
        raise ApiError(422, "bad_callback", str(error)) from None
    booking = await svc.payment_callback(provider, payload)
    return models.CallbackOut(booking_id=booking.booking_id, status=booking.status.value)


# ---- the booking log

async def log_filters(
    booking_id: Annotated[str | None, Query(max_length=32)] = None,
    member_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    seat_id: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[str | None, Query(max_length=40, description="ISO-8601 time, inclusive")] = None,
    until: Annotated[str | None, Query(max_length=40, description="ISO-8601 time, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=LOG_PAGE_MAX)] = LOG_PAGE_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=20, description="next_cursor of the previous page")] = None,
) -> LogQuery:
    """The filters of both log views, bounded; a cursor is the last event id of the page before."""
    if cursor is not None and not is_cursor(cursor):
        raise ApiError(422, "bad_cursor", "the cursor is not one this service gave out")
    return LogQuery(booking_id=booking_id, member_id=member_id, seat_id=seat_id, type=type,
                    since=parse_time(since, "since"), until=parse_time(until, "until"),
                    before_id=int(cursor) if cursor else None, limit=limit)


def is_cursor(text: str) -> bool:
    """An event id as this service writes it: 1 to 18 ASCII digits. (``str.isdigit`` alone also
    takes digits such as '²' that ``int`` refuses.)"""
    return 0 < len(text) <= 18 and text.isascii() and text.isdigit()


LogFilters = Annotated[LogQuery, Depends(log_filters)]


async def log_page(svc: BookingService, query: LogQuery) -> models.LogPageOut:
    events = await svc.store.query_log(query)
    names = await svc.store.usernames(e.member_id for e in events)
    return models.LogPageOut(
        events=[models.LogEventOut(id=e.id, at=iso(e.at), type=e.type, booking_id=e.booking_id, member_id=e.member_id,
                                   username=names.get(e.member_id), seat_ids=list(e.seat_ids), detail=e.detail)
                for e in events],
        next_cursor=str(events[-1].id) if len(events) == query.limit else None,
    )


def admin_only(who: Caller) -> None:
    if not who.is_admin:
        raise ApiError(403, "admin_only", "only an admin may read everyone's log")


@router.get("/api/admin/logs", response_model=models.LogPageOut, tags=["log"])
async def admin_logs(who: Authenticated, svc: Service, query: LogFilters):
    admin_only(who)
    return await log_page(svc, query)


CSV_ROWS_MAX = 20_000


@router.get("/api/admin/logs.csv", tags=["log"], response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 with a BOM, for Excel"}})
async def admin_logs_csv(who: Authenticated, svc: Service, query: LogFilters):
    """The filtered log (the same filters as ``GET /api/admin/logs``; ``limit`` and ``cursor``
    are ignored) as CSV, newest first, at most 20,000 rows: KST times, event names, usernames,
    seat labels and readable details in Korean; UTF-8 with a BOM so that Excel shows Hangul."""
    admin_only(who)
    events, before = [], None
    while len(events) < CSV_ROWS_MAX:
        page = await svc.store.query_log(replace(query, before_id=before, limit=LOG_PAGE_MAX))
        events += page
        if len(page) < LOG_PAGE_MAX:
            break
        before = page[-1].id
    events = events[:CSV_ROWS_MAX]
    names = await svc.store.usernames(e.member_id for e in events)
    body = log_csv(events, svc.venue, names)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="encore-log-{stamp}.csv"'})


@router.get("/api/admin/dashboard", response_model=models.DashboardOut, tags=["log"])
async def admin_dashboard(who: Authenticated, svc: Service):
    """Seats sold, held and available per grade (from the replica's current seat map), payments
    by status, bookings by status."""
    admin_only(who)
    counts = seats_by_grade(svc.prices, bytes(svc.seat_map.seats))
    payments = await svc.store.payment_counts()
    return models.DashboardOut(
        seats_version=str(svc.seat_map.version),
        grades=[models.GradeSeatsOut(grade=c.grade, price=c.price, seats=c.seats, sold=c.sold, held=c.held,
                                     available=c.available, revenue=c.revenue) for c in counts],
        payments=[models.PaymentCountOut(status=status, count=count, amount=amount)
                  for status, (count, amount) in sorted(payments.items())],
        bookings=await svc.store.booking_counts(),
    )


@router.get("/api/me/logs", response_model=models.LogPageOut, tags=["log"])
async def my_logs(who: Authenticated, svc: Service, query: LogFilters):
    """The caller's own events; a ``member_id`` filter is replaced by the caller's."""
    return await log_page(svc, replace(query, member_id=who.member_id))


# ---- operations

@router.get("/healthz", tags=["operations"])
async def healthz(svc: Service):
    if not svc.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return {"status": "ok", "seats": svc.venue.seats}


@router.get("/metrics", tags=["operations"])
async def metrics(svc: Service):
    """Every replica's and actor's figures, labelled, whichever replica answers (``api/metrics.py``)."""
    return Response(await svc.metrics_text(), media_type="text/plain; version=0.0.4")


@router.get("/static-ceiling", include_in_schema=False)
async def static_ceiling():
    """A constant answer through the same front and the same hot path as the seat map and the
    queue polls: the ceiling every benchmark divides by."""
    return await constant_answer()
