#!/usr/bin/env python3
"""Prints the code-scanning notifications as they arrive, for trying the example by hand.

Listens on 127.0.0.1:9000 for the topic's webhook (POST /code-scan: SNS's notification JSON)
and on 127.0.0.1:2525 as a tiny SMTP server for its mail (start the server with
--smtp-relay 127.0.0.1:2525). Python's standard library only.
"""

import asyncio
import json

HTTP_PORT = 9000
SMTP_PORT = 2525


async def http_client(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length)
    try:
        note = json.loads(body)
        message = json.loads(note.get("Message", "null"))
        print(f"webhook {lines[0]}\n  subject: {note.get('Subject')}\n  message: {json.dumps(message, indent=2)}", flush=True)
    except ValueError:
        print(f"webhook {lines[0]}: {body[:500]!r}", flush=True)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


async def smtp_client(reader, writer):
    async def reply(text):
        writer.write(text.encode() + b"\r\n")
        await writer.drain()

    await reply("220 listen.py ESMTP")
    recipients = []
    while line := await reader.readline():
        verb = line.decode("latin-1").strip().split(" ")[0].upper()
        if verb in ("EHLO", "HELO"):
            await reply("250 listen.py")
        elif verb == "MAIL":
            recipients = []
            await reply("250 OK")
        elif verb == "RCPT":
            recipients.append(line.decode("latin-1").split("<", 1)[-1].rstrip("\r\n>"))
            await reply("250 OK")
        elif verb == "DATA":
            await reply("354 end with a lone dot")
            data = []
            while (chunk := await reader.readline()) not in (b".\r\n", b""):
                data.append(chunk.decode("utf-8", "replace"))
            headers = "".join(data).split("\r\n\r\n", 1)[0].split("\r\n")
            subject = next((h[8:].strip() for h in headers if h.lower().startswith("subject:")), "")
            print(f"mail to {', '.join(recipients)}\n  subject: {subject}", flush=True)
            await reply("250 queued")
        elif verb == "QUIT":
            await reply("221 bye")
            break
        else:
            await reply("250 OK")
    writer.close()


async def main():
    http = await asyncio.start_server(http_client, "127.0.0.1", HTTP_PORT)
    smtp = await asyncio.start_server(smtp_client, "127.0.0.1", SMTP_PORT)
    print(f"listening: webhook on http://127.0.0.1:{HTTP_PORT}/code-scan, mail on 127.0.0.1:{SMTP_PORT}", flush=True)
    async with http, smtp:
        await asyncio.gather(http.serve_forever(), smtp.serve_forever())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
