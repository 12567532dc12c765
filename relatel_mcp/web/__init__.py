"""Web plumbing for the front door and OAuth: uvicorn on a socket with connection caps and read
deadlines, the plain HTML page, and the approval pages (an HTTP route, or loopback over stdio)."""
