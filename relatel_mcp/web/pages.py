"""The few HTML pages people see (an approval page, the OAuth consent pages, login's "you can
close this tab"): one look, and headers that keep them out of caches, frames and referrers."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

_STYLE = (
    "body{font:16px system-ui;max-width:40em;margin:2em auto;padding:0 1em}"
    ".facts{border-left:4px solid #c60;padding-left:1em}.facts p{white-space:pre-wrap;overflow-wrap:anywhere}"
    "button{font-size:1.1em;margin-right:1em}"
)


def page(status: int, title: str, body: str, *, form_action: str = "'self'") -> HTMLResponse:
    """`body` is HTML the caller built (escaping every value in it); `form_action` is where the
    page's form may go, redirects after it included."""
    document = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width'><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    headers = {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; "
        "frame-ancestors 'none'",
    }
    return HTMLResponse(document, status_code=status, headers=headers)
