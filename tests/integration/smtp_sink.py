#!/usr/bin/python3
# smtp_sink: a real SMTP server (aiosmtpd, Debian's python3-aiosmtpd) for the mail tests.
# Saves every accepted message as DIR/NNNN.eml (the bytes as received, dot-unstuffed) with its
# envelope in DIR/NNNN.env (JSON: mail_from, rcpt_tos). Run it with /usr/bin/python3.
# Behaviour by the recipient's local part:
#   reject*         550 at RCPT (permanent)
#   tempfail-once*  451 at RCPT the first time that address is seen, accepted afterwards
#   tempfail*       451 at RCPT always
# --pipe CMD hands each accepted message to CMD on stdin, as an MTA's pipe transport does, and
#   answers by its exit status: 0 → 250, 75 (EX_TEMPFAIL) → 451, anything else → 554.
# --auth USER:PASS requires AUTH (PLAIN/LOGIN, allowed without TLS) with those credentials.
# Prints "smtp sink listening on 127.0.0.1:PORT" once ready; stops on SIGTERM.
import argparse
import asyncio
import json
import os
import signal
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir, pipe=None):
        self.outdir = outdir
        self.pipe = pipe
        self.count = 0
        self.seen_tempfail = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("tempfail-once"):
            if address.lower() not in self.seen_tempfail:
                self.seen_tempfail.add(address.lower())
                return "451 4.3.0 <%s>: try again later" % address
        elif local.startswith("tempfail"):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.outdir, "%04d" % self.count)
        with open(base + ".env.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".env.tmp", base + ".env")
        os.rename(base + ".eml.tmp", base + ".eml")
        if self.pipe:
            proc = await asyncio.create_subprocess_shell(
                self.pipe, stdin=asyncio.subprocess.PIPE)
            await proc.communicate(envelope.original_content)
            if proc.returncode == 75:
                return "451 4.3.0 pipe: try again later"
            if proc.returncode != 0:
                return "554 5.3.0 pipe: rejected (exit %d)" % proc.returncode
        return "250 2.0.0 queued as %04d" % self.count


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode() and auth_data.password == password.encode())
        # handled=False: aiosmtpd answers 535 itself on a failure.
        return AuthResult(success=ok, handled=False)
    return authenticator


async def main():
    warnings.simplefilter("ignore")  # AUTH without TLS is what the tests want
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--auth", default=None)
    ap.add_argument("--pipe", default=None)
    args = ap.parse_args()
    handler = Sink(args.dir, args.pipe)
    kw = {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        kw = dict(authenticator=make_authenticator(user, password), auth_required=True,
                  auth_require_tls=False)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", ident="trackbridge test sink", **kw),
        host="127.0.0.1", port=args.port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    port = server.sockets[0].getsockname()[1]
    print("smtp sink listening on 127.0.0.1:%d" % port, flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
