"""`python -m explorer [--port 5006] [--data S --checkpoint C --embeddings E ...]`: serve on localhost only.

`panel serve` listens on every interface unless given `--address`; this launcher binds to 127.0.0.1
and accepts websocket connections from localhost only, which is the safe default on shared machines.
Bound to any other address it requires a login (Panel basic auth): the password is --password, else
$ONEPROT_EXPLORER_PASSWORD, else a random one printed at start; `--no-auth` serves without one.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m explorer", description="Serve the OneProt explorer on localhost.")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument("--password", help="login password when serving beyond loopback "
                   "(default: $ONEPROT_EXPLORER_PASSWORD, else a random one, printed)")
    ns, app_args = p.parse_known_args(argv)

    import panel as pn

    from explorer.app import TITLE, create_app, warm_up
    from explorer.options import parse_options

    options = parse_options(app_args)
    warm_up(options)
    origins = [f"localhost:{ns.port}", f"127.0.0.1:{ns.port}"]
    auth = {}
    if ns.address not in ("127.0.0.1", "localhost", "::1"):
        options.allow_remote = True  # the operator chose to bind elsewhere
        origins.append(f"{ns.address}:{ns.port}")
        if not options.no_auth:
            import os
            import secrets

            password = ns.password or os.environ.get("ONEPROT_EXPLORER_PASSWORD") or secrets.token_urlsafe(12)
            if not (ns.password or os.environ.get("ONEPROT_EXPLORER_PASSWORD")):
                print(f"explorer: remote clients log in with any user name and the password {password}", flush=True)
            auth = {"basic_auth": password, "cookie_secret": secrets.token_hex(32)}
    pn.serve({"app": lambda: create_app(options)}, port=ns.port, address=ns.address, websocket_origin=origins,
             show=ns.show, title=TITLE, **auth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
