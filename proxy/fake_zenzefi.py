"""A small stand-in for the Zenzefi server, for tests, demos and benchmarks.

Run it with ``python -m proxy.fake_zenzefi --port 18090`` (add ``--tls`` for
HTTPS with a self-signed certificate written next to it). It is a bare ASGI
app served by uvicorn, so it costs the proxy's benchmarks little.

``scripts/run`` starts it as the demo upstream when ZENZEFI_TARGET_URL is unset.

Endpoints: ``/`` (an HTML UI page with absolute and relative links, a
stylesheet, an image and a form, that says it is simulated), ``/static/app.css``, ``/static/logo.svg``,
certificate JSON shaped like Zenzefi's (``/certificates/filter``,
``/certificates/details/{id}``, ``POST /certificates/import/``),
``/users/currentUser``, ``/echo`` (what arrived: method, path, query,
headers, body length and hash), ``/large?kb=N`` (streamed), ``/redirect``,
``/slow?seconds=S``, ``/cookies`` (two Set-Cookie headers), ``/status/{code}``,
``/compressed?encoding=gzip|deflate&kb=N`` (a JSON document, compressed, with
the compressed ``Content-Length``, as IIS and most servers answer; without
``kb`` a small one, like a certificate list).
"""

import argparse
import asyncio
import hashlib
import json
import urllib.parse
import zlib

CERTIFICATES = [
    {
        "id": 1,
        "subject": "CN=ECU-Gateway-01",
        "issuer": "CN=Zenzefi Root CA",
        "status": "valid",
        "validTo": "2027-05-01",
    },
    {"id": 2, "subject": "CN=ECU-Body-17", "issuer": "CN=Zenzefi Root CA", "status": "valid", "validTo": "2026-12-31"},
    {"id": 3, "subject": "CN=ECU-Legacy-03", "issuer": "CN=Old CA", "status": "expired", "validTo": "2024-01-15"},
]

STYLESHEET = (
    b"body{font-family:sans-serif;margin:2rem;background:#f4f7f4}h1{color:#2a7a3a}.card{background:#fff;padding:1rem}"
)
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" rx="8" '
    b'fill="#2a7a3a"/><text x="32" y="42" font-size="28" text-anchor="middle" fill="#fff">Z</text></svg>'
)


def _page(host: str, scheme: str) -> bytes:
    absolute = f"{scheme}://{host}"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Zenzefi</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><div class="card">
<img src="/static/logo.svg" alt="Zenzefi logo" id="logo" width="64" height="64">
<h1>Zenzefi certificate management</h1>
<p id="simulated">Simulated Zenzefi (demo upstream of Zenzefi Gate): sample data, not a real server.</p>
<ul>
  <li><a href="/certificates/filter" id="link-absolute-path">Certificates</a></li>
  <li><a href="certificates/details/1" id="link-relative">Certificate 1</a></li>
  <li><a href="{absolute}/users/currentUser" id="link-absolute-url">Current user</a></li>
  <li><a href="/form" id="link-form">Import a certificate</a></li>
</ul>
</div></body></html>""".encode()


FORM = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Import</title><link rel="stylesheet" href="/static/app.css"></head>
<body><h1>Import a certificate</h1>
<form method="post" action="/certificates/import/">
  <label>Name <input name="name" id="name"></label>
  <button type="submit" id="import">Import</button>
</form></body></html>"""


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send(send, status: int, body: bytes, content_type: str = "application/json", headers=()):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _json(data) -> bytes:
    return json.dumps(data).encode()


def document(kb: int | None) -> bytes:
    """The uncompressed body of ``/compressed``: small, or about ``kb`` KiB of certificate records."""
    if kb is None:
        return _json({"certificates": CERTIFICATES, "total": len(CERTIFICATES), "page": 1})
    rows, size, n = [], 0, 0
    while size < kb * 1024:
        row = json.dumps({"id": n, "subject": f"CN=ECU-{n:07d}", "serial": f"{n * 2654435761 % 2**32:08x}"})
        rows.append(row)
        size += len(row) + 1
        n += 1
    return ("[" + ",".join(rows) + "]").encode()


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    else:  # "deflate" is the zlib format (RFC 1950), as HTTP defines it
        packer = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS)
    return packer.compress(body) + packer.flush()


_compressed: dict[tuple[str, int | None], bytes] = {}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    method = scope["method"]
    query = urllib.parse.parse_qs(scope["query_string"].decode(), keep_blank_values=True)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    host = dict(headers).get("host", "zenzefi.local")
    body = await _read_body(receive)

    if path == "/":
        return await _send(send, 200, _page(host, scope.get("scheme", "http")), "text/html; charset=utf-8")
    if path == "/form":
        return await _send(send, 200, FORM, "text/html; charset=utf-8")
    if path == "/static/app.css":
        return await _send(send, 200, STYLESHEET, "text/css")
    if path == "/static/logo.svg":
        return await _send(send, 200, LOGO, "image/svg+xml")
    if path == "/certificates/filter":
        return await _send(send, 200, _json({"certificates": CERTIFICATES, "total": len(CERTIFICATES)}))
    if path.startswith("/certificates/details/"):
        wanted = path.rsplit("/", 1)[-1]
        found = [c for c in CERTIFICATES if str(c["id"]) == wanted]
        return await _send(send, 200 if found else 404, _json(found[0] if found else {"error": "not found"}))
    if path == "/certificates/import/" and method == "POST":
        fields = urllib.parse.parse_qs(body.decode(errors="replace"))
        name = (fields.get("name") or [""])[0]
        page = f"<!DOCTYPE html><html><body><h1 id='imported'>Imported {name}</h1></body></html>".encode()
        if "text/html" in dict(headers).get("accept", ""):
            return await _send(send, 200, page, "text/html; charset=utf-8")
        return await _send(send, 201, _json({"imported": True, "bytes": len(body), "name": name}))
    if path == "/users/currentUser":
        return await _send(send, 200, _json({"username": "workshop", "roles": ["admin"]}))
    if path == "/echo" or path.startswith("/echo/"):
        return await _send(
            send,
            200,
            _json(
                {
                    "method": method,
                    "path": path,
                    "raw_path": scope.get("raw_path", b"").decode("latin-1"),
                    "query": scope["query_string"].decode("latin-1"),
                    "query_params": query,
                    "headers": [[k, v] for k, v in headers],
                    "body_length": len(body),
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                }
            ),
        )
    if path == "/large":
        size = int((query.get("kb") or ["1024"])[0]) * 1024
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())],
            }
        )
        chunk = b"z" * 65536
        left = size
        while left > 0:
            part = chunk[: min(left, len(chunk))]
            left -= len(part)
            await send({"type": "http.response.body", "body": part, "more_body": left > 0})
        return None
    if path == "/compressed":
        encoding = (query.get("encoding") or ["gzip"])[0]
        kb = int(query["kb"][0]) if query.get("kb") else None
        if encoding not in ("gzip", "deflate"):
            return await _send(send, 400, _json({"error": "encoding must be gzip or deflate"}))
        if (encoding, kb) not in _compressed:
            _compressed[encoding, kb] = compress(document(kb), encoding)
        packed = _compressed[encoding, kb]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-encoding", encoding.encode()),
                    (b"content-length", str(len(packed)).encode()),
                    (b"vary", b"Accept-Encoding"),
                ],
            }
        )
        for start in range(0, len(packed), 65536):
            part = packed[start : start + 65536]
            await send({"type": "http.response.body", "body": part, "more_body": start + 65536 < len(packed)})
        return None
    if path == "/redirect":
        return await _send(send, 302, b"", "text/plain", [(b"location", b"/certificates/filter")])
    if path == "/slow":
        await asyncio.sleep(float((query.get("seconds") or ["5"])[0]))
        return await _send(send, 200, _json({"slow": True}))
    if path == "/cookies":
        return await _send(
            send,
            200,
            _json({"cookies": 2}),
            headers=[
                (b"set-cookie", b"session=abc123; Path=/; HttpOnly"),
                (b"set-cookie", b"theme=dark; Path=/certificates"),
            ],
        )
    if path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[-1])
        return await _send(send, code, _json({"status": code}))
    return await _send(send, 404, _json({"error": "not found", "path": path}))


def self_signed_certificate(directory) -> tuple[str, str]:
    """Write a self-signed certificate for 127.0.0.1/localhost; return (cert path, key path)."""
    import datetime as dt
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = Path(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Zenzefi")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-zenzefi.crt", directory / "fake-zenzefi.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def main() -> None:
    import tempfile

    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh self-signed certificate")
    parser.add_argument("--cert-dir", default=None, help="where to write the certificate (default: a temp dir)")
    args = parser.parse_args()
    options = {}
    if args.tls:
        cert, key = self_signed_certificate(args.cert_dir or tempfile.mkdtemp(prefix="fake-zenzefi-"))
        print(f"CA bundle for ZENZEFI_CA_BUNDLE: {cert}", flush=True)
        options = {"ssl_certfile": cert, "ssl_keyfile": key}
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, **options)


if __name__ == "__main__":
    main()
