"""``python -m emulator serve ...``: run the Salesforce emulator over HTTPS."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .state import DEFAULT_CALLBACKS, Config, EmulatorState, session_lifetime

EPILOG = """\
Writes STATE_DIR/ca.pem (trust it, or pass it to your client as the CA bundle) and
STATE_DIR/connected-app.json (client id and secret, callback URLs, login and instance URL,
users with passwords and their orgs, the admin key for /__emulator), then prints one line:
  emulator ready https://HOST:PORT state=STATE_DIR

Orgs and users (password from --password):
  production      admin@acme.example, integration@acme.example, restricted@acme.example
                  (restricted: Contact/Lead Phone and MobilePhone hidden by field-level security)
  sandbox         admin@acme-uat.example
  personaccounts  admin@pinecone.example (Person Accounts on)
  noapi           admin@smallshop.example (Professional Edition: REST answers API_DISABLED_FOR_ORG)

Faults are off unless asked for. --fault JSON (repeatable; also POST /__emulator/faults) adds a rule:
  type  error              answer "status" 500 (UNKNOWN_EXCEPTION), 502 or 503 (SERVER_UNAVAILABLE)
        limit_exceeded     403 REQUEST_LIMIT_EXCEEDED
        invalid_locator    400 INVALID_QUERY_LOCATOR on a nextRecordsUrl fetch
        slow               sleep "seconds" (default 1), then answer normally
        page_timeout       a query page that sleeps "seconds" (default 30) every time it is asked for
        truncate_page      a query page whose body is cut off mid-JSON
        done_without_next  a query page saying done: false with no nextRecordsUrl
        expire_sessions    expire the org's sessions now (when the rule fires): that call and every
                           later one with those tokens answer 401 INVALID_SESSION_ID; refresh works
  when  "nth": N (the Nth matching call), "from_call": N (every call from the Nth on),
        "share": 0.2 with "seed": S (that share of calls), none of them: every call;
        "times": N stops after N hits; "page": N picks a query page (1 = the query itself)
  where "org": production|sandbox|personaccounts|noapi (default every org), "path": text in the path
  e.g.  --fault '{"type":"error","status":503,"nth":3}'
        --fault '{"type":"limit_exceeded","from_call":100,"org":"sandbox"}'
        --fault '{"type":"truncate_page","page":2,"times":1}'
        --fault '{"type":"expire_sessions","nth":5}'   (sessions lapse on the 5th REST call)

Admin endpoint (header X-Emulator-Admin-Key: the admin_key in connected-app.json):
  GET/POST/DELETE /__emulator/faults, POST /__emulator/expire-sessions {"org": ...} (expire sessions now),
  POST /__emulator/reset-limits, GET/POST /__emulator/clock {"advance": seconds | "set": datetime},
  POST /__emulator/records/OBJECT, PATCH/DELETE /__emulator/records/OBJECT/ID,
  POST /__emulator/records/ID/touch (system update), POST /__emulator/convert-lead/ID, GET /__emulator/state
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulator", description="Local Salesforce org emulator")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the emulator over HTTPS", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--host", default="127.0.0.1", help="address to bind and to put in URLs (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 picks a free one)")
    s.add_argument("--state-dir", default=".emulator", help="where ca.pem, connected-app.json and the store live (default .emulator)")
    s.add_argument("--data", nargs="+", action="extend", default=[], metavar="PLAN_OR_FILE",
                   help="Salesforce CLI data-tree plan or record file(s) to load")
    s.add_argument("--generate", type=int, default=0, metavar="N",
                   help="generate a messy demo org of about N people")
    s.add_argument("--seed", type=int, default=1, help="seed for --generate (default 1)")
    s.add_argument("--org", default="production", help="org that --data/--generate fill (default production)")
    s.add_argument("--keep-data", action="store_true",
                   help="keep the records and issued OAuth tokens already in STATE_DIR instead of starting from an empty org")
    s.add_argument("--client-id", default=None, help="connected app consumer key (default: kept in STATE_DIR)")
    s.add_argument("--client-secret", default=None, help="connected app consumer secret")
    s.add_argument("--callback-url", action="append", default=None, metavar="URL",
                   help="registered callback URL, repeatable; ':*' matches any port and '*' any path "
                        f"(default: {' '.join(DEFAULT_CALLBACKS)})")
    s.add_argument("--any-callback", action="store_true", help="accept any redirect_uri (tests only)")
    s.add_argument("--auto-approve", action="store_true",
                   help="authorize redirects straight back with a code for --default-user (headless demos)")
    s.add_argument("--default-user", default="admin@acme.example",
                   help="user --auto-approve signs in as; its org is the one the demo connects to "
                        "(default admin@acme.example)")
    s.add_argument("--password", default="emulator-pass-1", help="password of every demo user")
    s.add_argument("--session-lifetime", default="2h", type=_lifetime, help="access token lifetime: 900, 90s, 15m, 2h (default 2h)")
    s.add_argument("--api-limit", type=int, default=15000, help="daily API request limit per org (default 15000)")
    s.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    s.add_argument("--fault", action="append", default=[], metavar="JSON", type=_fault_rule,
                   help="fault rule (see below)")
    return p


def _lifetime(text: str) -> int:
    try:
        seconds = session_lifetime(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a lifetime (e.g. 900, 90s, 15m, 2h)") from None
    if seconds < 1:
        raise argparse.ArgumentTypeError("a session lasts at least 1 second")
    return seconds


def _fault_rule(text: str) -> dict:
    from .faults import FaultError, validate
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    try:
        return validate(spec)
    except FaultError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def previous_app(state_dir: Path) -> dict:
    f = state_dir / "connected-app.json"
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return {}


def serve(args) -> int:
    from .server import HttpsServer, load_or_create_ca

    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / ".gitignore").write_text("*\n")  # secrets and generated data never land in git
    prev = previous_app(state_dir)
    config = Config(
        client_id=args.client_id or prev.get("client_id", ""),
        client_secret=args.client_secret or prev.get("client_secret", ""),
        callback_urls=args.callback_url or list(DEFAULT_CALLBACKS), any_callback=args.any_callback,
        auto_approve=args.auto_approve, default_user=args.default_user, password=args.password,
        session_lifetime=args.session_lifetime, api_limit=args.api_limit,
        admin_key=prev.get("admin_key", ""))
    state = EmulatorState(config, str(state_dir / "store.sqlite"), fresh=not args.keep_data)
    if config.default_user.lower() not in state.users:
        print(f"unknown --default-user {config.default_user}", file=sys.stderr)
        return 2
    for spec in args.fault:
        state.faults.add(spec)
    if args.data:
        from .loader import load_paths
        load_paths(state.store, args.org, args.data)
    if args.generate:
        from .generator import generate
        generate(state.store, args.org, args.generate, seed=args.seed)
    ca, ca_file = load_or_create_ca(state_dir)
    server = HttpsServer(state, args.host, args.port, ca, log_requests=args.log_requests)
    (state_dir / "connected-app.json").write_text(json.dumps(state.public_config(), indent=2) + "\n")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"emulator ready {state.url} state={state_dir}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
        state.store.close()
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2
