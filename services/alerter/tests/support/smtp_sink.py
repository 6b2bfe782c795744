"""A loopback SMTP server for the alerter's e-mail tests (aiosmtpd).

Listens on 127.0.0.1 on a port the system picks and prints that port on the first line of
stdout. Each message received becomes two files in --dir: NNNN.eml (the raw message) and
NNNN.json (the envelope and the headers and body as Python's e-mail parser reads them, so the
test checks the message independently of the library that wrote it). The .json file appears
last, whole: its presence means the message is complete. The server exits when stdin closes,
so it never outlives the test that started it.

Modes: plain (no TLS), starttls (STARTTLS required before MAIL), tls (TLS from the first
byte). --user and --password require AUTH with those credentials (only over TLS). A recipient
nobody@… is refused with 550, later@… with 451.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Scripted refusals, for the tests of permanent and transient SMTP errors.
        if address.startswith("nobody@"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, f"{self.count:04d}")
        raw = envelope.original_content or envelope.content
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "login": session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None,
            "from": str(parsed["From"]),
            "to": str(parsed["To"]),
            "subject": str(parsed["Subject"]),
            "message_id": str(parsed["Message-ID"]),
            "content_type": parsed.get_content_type(),
            "body": parsed.get_content(),
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 Message accepted"


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # Unhandled on failure: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=ok, auth_data=auth_data if ok else None)

    return authenticate


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    # The whole conversation goes to stderr, which the test shows when it fails.
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

    context = None
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    handler = Saver(args.dir)
    options = {"hostname": "flick-test-smtp"}
    if args.user:
        options["authenticator"] = authenticator_for(args.user, args.password)
        options["auth_required"] = True
    if args.mode == "starttls":
        options["tls_context"] = context
        options["require_starttls"] = True

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **options),
        "127.0.0.1",
        0,
        ssl=context if args.mode == "tls" else None,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    # Until the test closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
