"""Runs the whole local stack: emulators, localstripe, the local identity provider, every function.

`python -m dev.stack up` is what `make dev` runs; the test suite and the benchmark start the same
stack through `Stack` on free ports with a fresh `demo-` project id. Every child runs in its own
process group and is stopped with it, so nothing is left behind.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.core.ticket_codes import new_key_setting

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
DEFAULT_PORTS = {
    "gateway": 8080,
    "firestore": 8681,
    "pubsub": 8682,
    "tasks": 8683,
    "stripe": 8684,
    "idp": 8685,
    "smtp": 8625,
    "sender": 8686,
}
LOCATION = "europe-west1"
EXPIRY_QUEUE = "booking-expiry"
WAITLIST_QUEUE = "waitlist-serve"  # its own queue: the emulator dispatches one task at a time per queue
WEBHOOK_QUEUE = "webhook-deliveries"  # dispatched concurrently, names deduplicated (dev/tasks_emulator.py)
QUEUES = (EXPIRY_QUEUE, WAITLIST_QUEUE, WEBHOOK_QUEUE)


def new_webhook_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def sdk_root() -> Path:
    gcloud = shutil.which("gcloud")
    if gcloud:
        candidate = Path(os.path.realpath(gcloud)).parent.parent
        if (candidate / "platform").is_dir():
            return candidate
    for path in (Path("/usr/lib/google-cloud-sdk"), Path("/usr/share/google-cloud-sdk")):
        if (path / "platform").is_dir():
            return path
    raise StackError("the Google Cloud SDK (gcloud, with its Firestore and Pub/Sub emulators) is not installed")


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, http.client.HTTPException):  # not listening yet, or not speaking HTTP/1.1 to us
        return False


@dataclass
class Child:
    name: str
    argv: list[str]
    port: int
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Stack:
    project: str
    run_dir: Path
    ports: dict[str, int]
    profile: str = "local"
    quiet: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    webhook_secret: str = field(default_factory=lambda: "whsec_" + secrets.token_hex(16))
    # The ticket-signing key (Secret Manager's TICKET_SIGNING_KEYS in a deployment): one per stack.
    ticket_keys: str = field(default_factory=lambda: new_key_setting("local"))
    # Seals the outbound webhook endpoints' signing secrets at rest (Secret Manager's WEBHOOK_SECRET_KEY).
    webhook_key: str = field(default_factory=lambda: new_webhook_key())

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def for_tests(cls, **extra_env: str) -> Stack:
        """Free ports, a fresh demo- project and a temporary run directory."""
        project = f"demo-test-{secrets.token_hex(4)}"
        run_dir = Path(tempfile.mkdtemp(prefix="stack-"))
        ports = {name: free_port() for name in DEFAULT_PORTS}
        return cls(project=project, run_dir=run_dir, ports=ports, profile="test", extra_env=extra_env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def host(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    @property
    def mail_dir(self) -> Path:
        return self.run_dir / "mail"

    @property
    def key_file(self) -> Path:
        return self.run_dir / "dev-issuer.pem"

    def client_env(self) -> dict[str, str]:
        """What a process needs to talk to this stack (the functions, tests, scripts)."""
        return {
            "PROFILE": self.profile,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "REGION": LOCATION,
            "FIRESTORE_EMULATOR_HOST": self.host("firestore"),
            "PUBSUB_EMULATOR_HOST": self.host("pubsub"),
            "CLOUD_TASKS_EMULATOR_HOST": self.host("tasks"),
            "STRIPE_API_BASE": f"http://{self.host('stripe')}",
            "STRIPE_SECRET_KEY": "sk_test_local",
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
            "TICKET_SIGNING_KEYS": self.ticket_keys,
            "WEBHOOK_SECRET_KEY": self.webhook_key,
            "WEBHOOK_SENDER_URL": f"http://{self.host('sender')}",
            "AUTH_PROVIDER": "local",
            "AUTH_ISSUER": f"{self.url}/dev",
            "AUTH_AUDIENCE": self.project,
            "AUTH_JWKS_URL": f"http://{self.host('idp')}/dev/jwks.json",
            "DEV_ISSUER_KEY_FILE": str(self.key_file),
            "TASKS_TARGET_BASE_URL": self.url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.ports["smtp"]),
            **self.extra_env,
        }

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Stack:
        """Start every child. A test stack whose free ports another process took between their choice
        and their use (parallel test runs on one machine) starts again on fresh ports."""
        for attempt in range(3):
            try:
                return self._start()
            except StackError:
                if self.profile != "test" or attempt == 2:
                    raise
                self.ports = {name: free_port() for name in self.ports}
        raise AssertionError("unreachable")

    def _start(self) -> Stack:
        _stop_cleanly_on_sigterm()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        taken = [f"{name} port {port}" for name, port in self.ports.items() if port_in_use(port)]
        if taken:
            raise StackError(
                f"already in use: {', '.join(taken)}. Stop the other stack (or process) or choose other "
                "ports (PORT, FIRESTORE_PORT, PUBSUB_PORT, TASKS_PORT, STRIPE_PORT, IDP_PORT, SMTP_PORT)."
            )
        from shared.core.devissuer import generate_private_key_pem

        self.key_file.write_bytes(generate_private_key_pem())
        self.key_file.chmod(0o600)
        try:
            self._launch(self._emulators())
            self._configure_localstripe()
            self._launch([self._gateway(), self._sender()])
            self._configure_pubsub()
            self._launch([self._scheduler()])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for child in reversed(self.children):
            _terminate(child)
        self.children.clear()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- children -------------------------------------------------------------------------------

    def _emulators(self) -> list[Child]:
        sdk = sdk_root()
        firestore_bin = sdk / "platform" / "cloud-firestore-emulator" / "cloud_firestore_emulator"
        pubsub_bin = sdk / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        for path in (firestore_bin, pubsub_bin):
            if not path.exists():
                raise StackError(f"emulator missing: {path.name} (install the gcloud emulator components)")
        for venv in (".venv-localstripe", ".venv-tasks"):
            if not (ROOT / venv).is_dir():
                raise StackError(f"{venv} is missing: run `make install` first")
        p = self.ports
        queue, line, hooks = (f"projects/{self.project}/locations/{LOCATION}/queues/{q}" for q in QUEUES)
        return [
            Child(
                "firestore",
                [
                    str(firestore_bin),
                    "start",
                    "--host=127.0.0.1",
                    f"--port={p['firestore']}",
                    f"--rules={ROOT / 'firestore.rules'}",
                ],
                p["firestore"],
                lambda: http_ok(f"http://{self.host('firestore')}/"),
            ),
            Child(
                "pubsub",
                [str(pubsub_bin), "--host=127.0.0.1", f"--port={p['pubsub']}"],
                p["pubsub"],
                lambda: http_ok(f"http://{self.host('pubsub')}/"),
            ),
            Child(
                "tasks",
                [
                    str(ROOT / ".venv-tasks/bin/python"),
                    str(ROOT / "dev" / "tasks_emulator.py"),
                    "start",
                    f"--port={p['tasks']}",
                    "-d",
                    queue,
                    "-d",
                    line,
                    "-d",
                    hooks,
                    "--parallel",
                    hooks,
                    "-r",
                    "20",
                    "-q",
                ],
                p["tasks"],
                lambda: port_in_use(self.ports["tasks"]),
                env={"PYTHONWARNINGS": "ignore"},
            ),
            Child(
                "idp",
                [str(VENV_BIN / "python"), "-m", "dev.idp", "--port", str(p["idp"]), "--key-file", str(self.key_file)],
                p["idp"],
                lambda: http_ok(f"http://{self.host('idp')}/dev/jwks.json"),
                env={"PYTHONPATH": str(ROOT)},
            ),
            Child(
                "smtp",
                [
                    str(VENV_BIN / "python"),
                    "-m",
                    "dev.mailsink",
                    "--port",
                    str(p["smtp"]),
                    "--folder",
                    str(self.mail_dir),
                ],
                p["smtp"],
                lambda: port_in_use(self.ports["smtp"]),
                env={"PYTHONPATH": str(ROOT)},
            ),
            Child(
                "localstripe",
                [str(ROOT / ".venv-localstripe/bin/localstripe"), "--port", str(p["stripe"]), "--from-scratch"],
                p["stripe"],
                lambda: http_ok(f"http://{self.host('stripe')}/v1/customers", timeout=2),
            ),
        ]

    def _gateway(self) -> Child:
        return self._functions("functions", "gateway", "dev.gateway:create()", os.environ.get("THREADS", "8"))

    def _sender(self) -> Child:
        """The webhook sender in a process of its own, as it is a function of its own when deployed:
        a slow integrator holds its threads, never the API's."""
        return self._functions("sender", "sender", "dev.gateway:create(only='sender')", "32")

    def _functions(self, name: str, port: str, app: str, threads: str) -> Child:
        return Child(
            name,
            [
                str(VENV_BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{self.ports[port]}",
                "--workers",
                os.environ.get("WORKERS", "1"),
                "--threads",
                threads,
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--chdir",
                str(ROOT),
                app,
            ],
            self.ports[port],
            lambda: http_ok(f"http://{self.host(port)}/healthz"),
            env={**self.client_env(), "PYTHONPATH": str(ROOT)},
        )

    def _scheduler(self) -> Child:
        return Child(
            "scheduler",
            [str(VENV_BIN / "python"), "-m", "dev.scheduler", self.url],
            0,
            lambda: True,
            env={"PYTHONPATH": str(ROOT), **self.extra_env},
        )

    def _launch(self, children: list[Child], timeout: float = 60.0) -> None:
        for child in children:
            log = open(self.run_dir / f"{child.name}.log", "ab")  # noqa: SIM115 - closed with the process
            env = {**os.environ, **child.env}
            child.process = subprocess.Popen(
                child.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                cwd=ROOT,
            )
            log.close()
            self.children.append(child)
        deadline = time.monotonic() + timeout
        pending = list(children)
        while pending:
            for child in list(pending):
                assert child.process is not None
                if child.process.poll() is not None:
                    tail = (self.run_dir / f"{child.name}.log").read_text(errors="replace")[-2000:]
                    raise StackError(f"{child.name} exited with {child.process.returncode}:\n{tail}")
                if child.ready():
                    pending.remove(child)
            if pending and time.monotonic() > deadline:
                raise StackError(f"not ready after {timeout:.0f}s: {', '.join(c.name for c in pending)}")
            time.sleep(0.1)

    def _configure_pubsub(self) -> None:
        """Topics, and push subscriptions to the local functions (as production's, minus OIDC)."""
        base = f"http://{self.host('pubsub')}/v1/projects/{self.project}"
        for topic, path in push_subscriptions().items():
            _put(f"{base}/topics/{topic}", {})
            _put(
                f"{base}/subscriptions/{topic}-push",
                {
                    "topic": f"projects/{self.project}/topics/{topic}",
                    "pushConfig": {"pushEndpoint": f"{self.url}{path}"},
                    "ackDeadlineSeconds": 30,
                },
            )

    def _configure_localstripe(self) -> None:
        """Register our webhook route with localstripe, signed with this run's secret."""
        form = urllib.parse.urlencode({"url": f"{self.url}/v1/webhooks/stripe", "secret": self.webhook_secret}).encode()
        request = urllib.request.Request(f"http://{self.host('stripe')}/_config/webhooks/local", data=form)
        with urllib.request.urlopen(request, timeout=30):
            pass


def _stop_cleanly_on_sigterm() -> None:
    """Children live in their own process groups: a SIGTERM must unwind through `stop()`, not kill us
    silently and leave them running."""
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:

        def unwind(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, unwind)


def push_subscriptions() -> dict[str, str]:
    """topic -> path of the function it is pushed to, from functions/routes.json."""
    routes = json.loads((ROOT / "functions" / "routes.json").read_text())["functions"]
    return {fn["topic"]: fn["push_path"] for fn in routes if "topic" in fn}


def _put(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # already exists
            raise


def _terminate(child: Child) -> None:
    process = child.process
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=8)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):  # the emulators' JVMs may outlive their leader
        os.killpg(process.pid, signal.SIGKILL)


# ---- make dev -----------------------------------------------------------------------------------


def _dev_ports() -> dict[str, int]:
    names = {
        "gateway": "PORT",
        "firestore": "FIRESTORE_PORT",
        "pubsub": "PUBSUB_PORT",
        "tasks": "TASKS_PORT",
        "stripe": "STRIPE_PORT",
        "idp": "IDP_PORT",
        "smtp": "SMTP_PORT",
        "sender": "SENDER_PORT",
    }
    return {name: int(os.environ.get(var, DEFAULT_PORTS[name])) for name, var in names.items()}


def _summary(stack: Stack) -> str:
    env = stack.client_env()
    rows = [
        ("API (every function)", stack.url),
        ("OpenAPI", f"{stack.url}/v1/openapi.json"),
        ("local identity provider", f"{stack.url}/dev/token; keys at {env['AUTH_JWKS_URL']} (also /dev/jwks.json)"),
        ("Firestore emulator", env["FIRESTORE_EMULATOR_HOST"]),
        ("Pub/Sub emulator", env["PUBSUB_EMULATOR_HOST"]),
        ("Cloud Tasks emulator", env["CLOUD_TASKS_EMULATOR_HOST"] + "  (queues " + ", ".join(QUEUES) + ")"),
        ("localstripe", env["STRIPE_API_BASE"] + "  (webhook -> /v1/webhooks/stripe)"),
        ("Pub/Sub push", ", ".join(f"{t} -> {p}" for t, p in push_subscriptions().items())),
        ("SMTP sink", f"127.0.0.1:{stack.ports['smtp']}  (mail saved in {stack.mail_dir})"),
        ("scheduler", "POST /tasks/sweep and /tasks/reconcile every SWEEP_INTERVAL_SECONDS (60)"),
        ("project", stack.project),
        ("logs", str(stack.run_dir)),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def _local_secret(run_dir: Path, name: str, make: Callable[[], str]) -> str:
    """A key of the local stack (the ticket-signing key, the webhook-secret key): generated once,
    kept in .run/dev (owner-only)."""
    path = run_dir / name
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make())
        print(f"generated {name} in {path.relative_to(ROOT)}", flush=True)
    return path.read_text().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.stack", description=__doc__)
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--demo", action="store_true", help="load demo data and print tokens")
    args = parser.parse_args(argv)

    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-tickets")
    if not project.startswith("demo-"):
        print(f"GOOGLE_CLOUD_PROJECT must start with demo- for the local stack (got {project})", file=sys.stderr)
        return 2
    run_dir = ROOT / ".run" / "dev"
    stack = Stack(
        project=project,
        run_dir=run_dir,
        ports=_dev_ports(),
        ticket_keys=_local_secret(run_dir, "ticket-signing-keys", lambda: new_key_setting("local")),
        webhook_key=_local_secret(run_dir, "webhook-secret-key", new_webhook_key),
        extra_env={
            "CORS_ALLOWED_ORIGINS": os.environ.get(
                "CORS_ALLOWED_ORIGINS", "http://localhost:3000,http://localhost:5173"
            )
        },
    )
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, request_stop)
    print(f"starting the local stack for project {project} ...", flush=True)
    started = time.monotonic()
    try:
        stack.start()
        print(f"ready in {time.monotonic() - started:.1f}s:\n{_summary(stack)}", flush=True)
        (ROOT / ".run" / "dev.env").write_text("".join(f"export {k}={v}\n" for k, v in stack.client_env().items()))
        print("  client settings written to .run/dev.env", flush=True)
        if args.demo:
            from dev.demo import load_demo

            load_demo(stack.url, stack.client_env())
        print("press Ctrl-C to stop everything", flush=True)
        while True:
            for child in stack.children:
                if child.process is not None and child.process.poll() is not None:
                    raise StackError(f"{child.name} stopped unexpectedly (see {stack.run_dir / child.name}.log)")
            time.sleep(1)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        stack.stop()
        print("stopped; nothing left running", flush=True)


if __name__ == "__main__":
    sys.exit(main())
