"""A real SMTP server for the notification tests (aiosmtpd).

Usage: smtp_sink.py PORT. Prints {"ready": PORT} once listening, then one JSON line per
message received: {"to": [...], "subject", "text", "html"} (the text/plain and text/html
alternatives, decoded). Stops when its standard input closes.
"""

import asyncio
import email
import json
import sys
from email import policy

from aiosmtpd.controller import Controller


class Handler:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        print(
            json.dumps(
                {
                    "to": envelope.rcpt_tos,
                    "from": str(message["from"]),
                    "subject": str(message["subject"]),
                    "text": text.get_content() if text else None,
                    "html": html.get_content() if html else None,
                }
            ),
            flush=True,
        )
        return "250 OK"


def main():
    port = int(sys.argv[1])
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"ready": port}), flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
