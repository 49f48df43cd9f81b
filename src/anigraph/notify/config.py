"""Event configuration of a sub-app (DescribeEventConfig / ModifyEventConfig, spec 2.7).

A NotificationUrl is checked when it is configured, with the same rules the sender applies when
it connects (scheme, port, every resolved address against the SSRF policy), so that a user
learns at once that a URL can never be called rather than from dead letters an hour later.
The sender checks again at send time: DNS answers change.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from anigraph.context import Context
from anigraph.db.models_events import EventConfig
from anigraph.net import FetchError, fetch
from anigraph.net.addresses import AddressPolicy, IPAddress, parse_networks
from anigraph.notify import outbox
from anigraph.settings import Settings

MAX_URL: Final = 2048
SIGN_KEY: Final = re.compile(r"[A-Za-z0-9]{0,32}")
SWITCH_VALUES: Final = ("ON", "OFF")
RESOLVE_SECONDS: Final = 5.0
"""How long a configuration-time DNS lookup may take (the API thread waits for it)."""

Resolver = Callable[[str, int], list[str]]
"""``resolve(host, port)``: every address of ``host``; raises ``OSError`` if it has none."""


class BadCallbackUrl(ValueError):
    """A NotificationUrl that cannot or must not be called; ``str()`` says why."""


def address_policy(settings: Settings) -> AddressPolicy:
    """The SSRF policy outgoing callbacks obey (the one URL fetches obey, too): public
    addresses only, plus the ``allow_private_networks`` ranges (on any port)."""
    return AddressPolicy(allow=parse_networks(settings.allow_private_networks))


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, by the system resolver, within RESOLVE_SECONDS.

    ``getaddrinfo`` has no timeout of its own: it runs in a daemon thread, and a late answer
    is dropped, so a hung resolver costs the request a few seconds, not a thread forever.
    """
    answers: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
                answers.append(str(info[4][0]))
        except BaseException as exc:  # handed to the waiting thread
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="anigraph-dns", daemon=True).start()
    if not done.wait(RESOLVE_SECONDS):
        raise OSError(f"no answer within {RESOLVE_SECONDS:g} s")
    if errors:
        raise OSError(str(errors[0]))
    return list(dict.fromkeys(answers))


def check_callback_url(settings: Any, url: str, resolve: Resolver = system_resolver) -> str:
    """``url`` if a callback could be sent to it now; else :class:`BadCallbackUrl`.

    The rules are the sender's (``anigraph.net.fetch``): the shape (http/https, a plain host,
    no credentials, a valid port), then every address the host resolves to must pass the
    address policy, and the port must be an allowed one unless the address is allow-listed.
    One refused address refuses the URL, as it would refuse the connection.
    """
    if len(url) > MAX_URL:
        raise BadCallbackUrl(f"the URL is longer than {MAX_URL} characters")
    policy = address_policy(settings)
    try:
        parsed = fetch.check_url(url, policy)
    except FetchError as exc:
        raise BadCallbackUrl(str(exc)) from None
    host = parsed.raw_host.decode("ascii").lower()
    port = parsed.port if parsed.port is not None else fetch.DEFAULT_PORTS[parsed.scheme]
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(answer) for answer in resolve(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise BadCallbackUrl(f"the host {host} cannot be resolved ({exc})") from None
        if not addresses:
            raise BadCallbackUrl(f"the host {host} cannot be resolved")
    for address in addresses:
        try:
            policy.check(address)
        except FetchError as exc:
            raise BadCallbackUrl(f"{host} may not be called back: {exc}") from None
        if port not in fetch.DEFAULT_ALLOWED_PORTS and not policy.explicitly_allowed(address):
            allowed = ", ".join(str(p) for p in sorted(fetch.DEFAULT_ALLOWED_PORTS))
            raise BadCallbackUrl(f"the port {port} may not be called back (allowed: {allowed})")
    return url


# -- the configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """ModifyEventConfig's parameters: ``None`` = not given, leave as is.

    ``notification_url=""`` clears the URL, ``sign_key=""`` clears the key.
    """

    mode: str | None = None
    notification_url: str | None = None
    upload_switch: str | None = None
    delete_switch: str | None = None
    persistence_switch: str | None = None
    sign_key: str | None = None


def describe(ctx: Context, sub_app_id: int) -> dict[str, Any]:
    """DescribeEventConfig's output (SignKey is never shown, as in Tencent's model)."""
    with ctx.db.session() as session:
        row = outbox.config_of(session, sub_app_id)
        if row is None:
            return {
                "Mode": outbox.PUSH,
                "NotificationUrl": "",
                "UploadMediaCompleteEventSwitch": "OFF",
                "DeleteMediaCompleteEventSwitch": "OFF",
                "PersistenceCompleteEventSwitch": "OFF",
            }
        return {
            "Mode": row.mode,
            "NotificationUrl": row.notification_url,
            "UploadMediaCompleteEventSwitch": row.upload_switch,
            "DeleteMediaCompleteEventSwitch": row.delete_switch,
            "PersistenceCompleteEventSwitch": row.persistence_switch,
        }


def validate(settings: Any, changes: Changes, resolve: Resolver = system_resolver) -> None:
    """Raise ``ValueError`` (:class:`BadCallbackUrl` for the URL) naming the first bad field."""
    if changes.mode is not None and changes.mode not in outbox.MODES:
        raise ValueError("Mode must be PUSH or PULL")
    for name in ("upload_switch", "delete_switch", "persistence_switch"):
        value = getattr(changes, name)
        if value is not None and value not in SWITCH_VALUES:
            raise ValueError(f"{name} must be ON or OFF")
    if changes.sign_key is not None and not SIGN_KEY.fullmatch(changes.sign_key):
        raise ValueError("SignKey must be at most 32 letters and digits")
    if changes.notification_url:
        check_callback_url(settings, changes.notification_url, resolve)


def modify(
    ctx: Context, sub_app_id: int, changes: Changes, resolve: Resolver = system_resolver
) -> None:
    """ModifyEventConfig: apply the given fields (validated first; nothing changes on error)."""
    validate(ctx.settings, changes, resolve)
    with ctx.db.session() as session:
        row = outbox.config_of(session, sub_app_id)
        if row is None:
            row = EventConfig(
                sub_app_id=sub_app_id,
                mode=outbox.PUSH,
                notification_url="",
                upload_switch="OFF",
                delete_switch="OFF",
                persistence_switch="OFF",
                sign_key="",
                updated_at=ctx.now(),
            )
            session.add(row)
        for name in (
            "mode",
            "notification_url",
            "upload_switch",
            "delete_switch",
            "persistence_switch",
            "sign_key",
        ):
            value = getattr(changes, name)
            if value is not None:
                setattr(row, name, value)
        row.updated_at = ctx.now()
