"""Offline checks of the deployment: Terraform (parsed with python-hcl2), firestore.indexes.json and
the source bundles of dev/package.py.

The google provider cannot be downloaded here, so `terraform validate` is out of reach. When the
terraform binary is on PATH, two more tests run: `terraform fmt -check`, and the manifests module
evaluated with `terraform console` (it has no provider) to compare the load balancer's routes with
the local gateway's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from dev import package
from dev.gateway import path_regex
from shared.geo import MAX_PRECISION, MIN_PRECISION

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra" / "terraform"
MODULE = INFRA / "modules" / "ticketing"
MANIFESTS = INFRA / "modules" / "manifests"
ENVIRONMENTS = ("staging", "prod")
TF_FILES = sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)
TERRAFORM = shutil.which("terraform")

SECRET_ENV = {
    "STRIPE_SECRET_KEY": "stripe-secret-key",
    "STRIPE_WEBHOOK_SECRET": "stripe-webhook-secret",
    "TICKET_SIGNING_KEYS": "ticket-signing-keys",
}
PLAIN_ENV = {
    "PROFILE",
    "GOOGLE_CLOUD_PROJECT",
    "AUTH_PROVIDER",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "AUTH_JWKS_URL",
    "HOLD_TTL_SECONDS",
    "MAX_PENDING_BOOKINGS_PER_BUYER",
    "CORS_ALLOWED_ORIGINS",
    "LOG_LEVEL",
}
LOCAL_ONLY_SETTINGS = (
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "CLOUD_TASKS_EMULATOR_HOST",
    "STRIPE_API_BASE",
    "AUTH_PROVIDER=local",
    "DEV_ISSUER_KEY_FILE",
)
SECRET_LITERALS = re.compile(r"\b(sk|rk)_(live|test)_\w+|\bwhsec_\w+")


# ---- helpers ------------------------------------------------------------------------------------


def routes() -> list[dict[str, Any]]:
    return json.loads((ROOT / "functions" / "routes.json").read_text())["functions"]


def deployed() -> list[dict[str, Any]]:
    return [f for f in routes() if not f.get("local_only")]


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals: `"10s"` -> `10s`."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return hcl2.load(f)


def blocks(directory: Path, kind: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """Labelled blocks of one directory: resource -> {(type, name): body}, variable -> {(name,): body}."""
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get(kind, []):
            for label, body in block.items():
                if kind in ("resource", "data"):
                    for name, inner in body.items():
                        found[(unquote(label), unquote(name))] = inner
                else:
                    found[(unquote(label),)] = body
    return found


def locals_of(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get("locals", []):
            merged.update(block)
    return merged


def resource(directory: Path, rtype: str, name: str) -> dict[str, Any]:
    return blocks(directory, "resource")[(rtype, name)]


def dynamic(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The `dynamic "<name>"` block inside `body`."""
    (found,) = [inner for block in body.get("dynamic", []) for label, inner in block.items() if unquote(label) == name]
    return found


def infra_texts() -> dict[Path, str]:
    return {p: p.read_text() for p in INFRA.rglob("*") if p.is_file() and ".terraform" not in p.parts}


# ---- Terraform ----------------------------------------------------------------------------------


def test_layout_is_a_module_and_one_root_per_environment() -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (MODULE / name).is_file(), name
    for env in ENVIRONMENTS:
        root = INFRA / "environments" / env
        module = blocks(root, "module")[("ticketing",)]
        assert unquote(module["source"]) == "../../modules/ticketing"
        assert unquote(module["environment"]) == env


@pytest.mark.parametrize("path", TF_FILES, ids=[p.relative_to(INFRA).as_posix() for p in TF_FILES])
def test_terraform_file_parses(path: Path) -> None:
    assert isinstance(parse(path), dict)


def test_variables_are_typed_and_described() -> None:
    for directory in {p.parent for p in TF_FILES}:
        for (name,), body in blocks(directory, "variable").items():
            assert "type" in body, f"{directory.name}: variable {name} has no type"
            assert body.get("description"), f"{directory.name}: variable {name} has no description"


def test_functions_are_read_from_routes_json() -> None:
    manifests = locals_of(MANIFESTS)
    assert manifests["routes"] == "${jsondecode(file(var.routes_file))}"
    assert "local.routes.functions" in manifests["deployed"]
    call = blocks(MODULE, "module")[("manifests",)]
    assert unquote(call["routes_file"]).endswith("/functions/routes.json")
    assert locals_of(MODULE)["functions"] == "${module.manifests.functions}"

    function = resource(MODULE, "google_cloudfunctions2_function", "fn")
    assert function["for_each"] == "${local.functions}"
    build = function["build_config"][0]
    assert build["entry_point"] == "${each.key}"
    assert unquote(build["runtime"]) == "python311"
    bundle = resource(MODULE, "google_storage_bucket_object", "source")
    assert bundle["for_each"] == "${local.functions}"
    assert "/build/${each.key}.zip" in bundle["source"]


def test_functions_run_concurrently_each_as_its_own_service_account() -> None:
    service = resource(MODULE, "google_cloudfunctions2_function", "fn")["service_config"][0]
    variables = blocks(MODULE, "variable")
    assert service["max_instance_request_concurrency"] == "${var.concurrency}"
    assert variables[("concurrency",)]["default"] >= 8
    assert unquote(variables[("cpu",)]["default"]) == "1"
    assert "var.min_instances" in service["min_instance_count"]
    assert service["service_account_email"] == "${google_service_account.fn[each.key].email}"
    assert resource(MODULE, "google_service_account", "fn")["for_each"] == "${local.functions}"


def test_local_only_functions_are_never_deployed() -> None:
    assert "!try(f.local_only, false)" in locals_of(MANIFESTS)["deployed"]
    texts = infra_texts()
    for fn in routes():
        if fn.get("local_only"):
            for path, text in texts.items():
                assert not re.search(rf"\b{fn['name']}\b", text), f"{fn['name']} named in {path}"


def test_every_setting_is_set_and_secrets_are_mounted() -> None:
    module_locals = locals_of(MODULE)
    env = module_locals["env"]
    assert env.keys() >= PLAIN_ENV
    assert not SECRET_ENV.keys() & env.keys(), "secrets must not be plain environment variables"
    assert {k: unquote(v) for k, v in module_locals["secret_env"].items()} == SECRET_ENV

    service = resource(MODULE, "google_cloudfunctions2_function", "fn")["service_config"][0]
    assert service["environment_variables"] == "${local.function_env}"
    assert "local.env" in module_locals["function_env"]
    mount = dynamic(service, "secret_environment_variables")
    assert mount["for_each"] == "${local.secret_env}"
    assert "google_secret_manager_secret.stripe" in mount["content"][0]["secret"]


def test_secrets_come_from_secret_manager_only() -> None:
    secrets = resource(MODULE, "google_secret_manager_secret", "stripe")
    assert secrets["for_each"] == "${toset(values(local.secret_env))}"
    for directory in {p.parent for p in TF_FILES}:
        types = {rtype for rtype, _ in blocks(directory, "resource")}
        assert "google_secret_manager_secret_version" not in types, "secret values must stay out of Terraform"
    access = resource(MODULE, "google_secret_manager_secret_iam_member", "access")
    assert unquote(access["role"]) == "roles/secretmanager.secretAccessor"
    for path, text in infra_texts().items():
        assert not SECRET_LITERALS.search(text), f"secret-like literal in {path}"


def test_no_local_stand_ins_in_infra() -> None:
    for path, text in infra_texts().items():
        for name in LOCAL_ONLY_SETTINGS:
            assert name not in text, f"{name} in {path}"
    condition = blocks(MODULE, "variable")[("auth_provider",)]["validation"][0]["condition"]
    assert '"firebase"' in condition
    assert '"oidc"' in condition
    assert '"local"' not in condition


def test_roles_are_least_privilege() -> None:
    project_roles = set()
    for (rtype, _), body in blocks(MODULE, "resource").items():
        if rtype == "google_project_iam_member":
            project_roles.add(unquote(body["role"]))
    assert "roles/datastore.user" in project_roles
    assert not any(r in project_roles for r in ("roles/owner", "roles/editor", "roles/secretmanager.secretAccessor"))
    assert unquote(resource(MODULE, "google_pubsub_topic_iam_member", "publisher")["role"]) == "roles/pubsub.publisher"
    for enqueuer in ("enqueuer", "waitlist_enqueuer"):
        assert unquote(resource(MODULE, "google_cloud_tasks_queue_iam_member", enqueuer)["role"]) == (
            "roles/cloudtasks.enqueuer"
        )
    internal = resource(MODULE, "google_cloud_run_service_iam_member", "internal")
    assert internal["member"] == '"serviceAccount:${google_service_account.invoker.email}"'


def test_event_driven_pieces() -> None:
    variables = blocks(MODULE, "variable")
    assert [unquote(t) for t in variables[("topics",)]["default"]] == ["payment-events", "booking-confirmed"]
    assert unquote(variables[("expiry_queue",)]["default"]) == "booking-expiry"
    assert unquote(variables[("sweep_schedule",)]["default"]) == "* * * * *"
    assert resource(MODULE, "google_cloud_tasks_queue", "expiry")["name"] == "${var.expiry_queue}"
    assert unquote(variables[("waitlist_queue",)]["default"]) == "waitlist-serve"
    assert resource(MODULE, "google_cloud_tasks_queue", "waitlist")["name"] == "${var.waitlist_queue}"
    job = resource(MODULE, "google_cloud_scheduler_job", "sweep")
    assert job["schedule"] == "${var.sweep_schedule}"
    assert job["http_target"][0]["oidc_token"][0]["service_account_email"] == "${google_service_account.invoker.email}"
    push = resource(MODULE, "google_pubsub_subscription", "push")
    assert push["push_config"][0]["oidc_token"]


def test_load_balancer_routes_every_public_path() -> None:
    url_map = resource(MODULE, "google_compute_url_map", "api")
    route = dynamic(url_map["path_matcher"][0], "route_rules")
    assert route["for_each"] == "${module.manifests.lb_routes}"
    assert route["content"][0]["match_rules"][0]["path_template_match"] == "${route_rules.value.template}"
    for fn in deployed():
        for path in fn.get("paths", []):
            assert re.fullmatch(r"(/([\w.-]+|\{\w+\}))*(/\*\*)?", path), f"{path}: not expressible as a path template"


# ---- Firestore indexes --------------------------------------------------------------------------

A, D = "ASCENDING", "DESCENDING"
EVENT_FILTERS = [(), (("search_tokens", "CONTAINS"),)] + [
    ((f"geohash_{n}", A),) for n in range(MIN_PRECISION, MAX_PRECISION + 1)
]
NEEDED_INDEXES = {("events", (("status", A), *extra, ("starts_at", A))) for extra in EVENT_FILTERS} | {
    ("bookings", (("event_id", A), ("booking_time", D))),
    ("bookings", (("user_id", A), ("booking_time", D))),
    ("bookings", (("status", A), ("expires_at", A))),
    ("bookings", (("event_id", A), ("status", A), ("expires_at", A))),  # live holds in the event's statistics
    ("payments", (("status", A), ("updated_at", A))),
    ("domain_events", (("event_id", A), ("at", D))),
    ("bookings", (("event_id", A), ("status", A), ("updated_at", A))),  # a cancellation's refunds done
    ("payments", (("event_id", A), ("status", A), ("attention", A))),  # a cancellation's refunds refused
    ("waitlist", (("event_id", A), ("status", A), ("created_at", A))),  # the line, in join order
    ("waitlist", (("event_id", A), ("created_at", A))),  # an event's waitlist for its admins
    ("waitlist", (("user_id", A), ("created_at", D))),  # a buyer's entries, newest first
    ("waitlist", (("status", A), ("event_id", A))),  # the sweep: events with a line, one by one
}


def test_firestore_indexes_cover_the_queries() -> None:
    doc = json.loads((ROOT / "firestore.indexes.json").read_text())
    have = []
    for index in doc["indexes"]:
        assert index["queryScope"] in ("COLLECTION", "COLLECTION_GROUP")
        assert len(index["fields"]) >= 2
        fields = []
        for field in index["fields"]:
            (mode,) = {k: v for k, v in field.items() if k in ("order", "arrayConfig")}.values()
            fields.append((field["fieldPath"], mode))
        have.append((index["collectionGroup"], tuple(f for f in fields if f[0] != "__name__")))
    assert len(have) == len(set(have)), "duplicate index"
    assert set(have) >= NEEDED_INDEXES, NEEDED_INDEXES - set(have)
    overrides = {(o["collectionGroup"], o["fieldPath"]) for o in doc["fieldOverrides"]}
    assert ("slots", "held_until") in overrides
    # the stream's timestamp and free-form maps are not indexed on their own (sequential writes)
    assert {("domain_events", f) for f in ("at", "changes", "data")} <= overrides


# ---- source bundles -----------------------------------------------------------------------------


def test_package_builds_one_bundle_per_function(tmp_path: Path) -> None:
    assert package.main(["--out", str(tmp_path)]) == 0
    local_only = {f"functions/{f['source']}" for f in routes() if f.get("local_only")}
    requirements = (ROOT / "requirements.txt").read_bytes()
    built = {p.name for p in tmp_path.glob("*.zip")}
    assert built == {f"{fn['name']}.zip" for fn in deployed()}
    for fn in deployed():
        with zipfile.ZipFile(tmp_path / f"{fn['name']}.zip") as zf:
            names = set(zf.namelist())
            main = zf.read("main.py").decode()
            assert zf.read("requirements.txt") == requirements
        module = fn["source"].removesuffix(".py")
        assert main == f"from functions.{module} import {fn['name']}  # noqa: F401\n"
        assert {"functions/__init__.py", f"functions/{fn['source']}", "shared/__init__.py"} <= names
        assert not any("__pycache__" in n or n.endswith(".pyc") or "/tests/" in n for n in names)
        assert not names & local_only
        assert (tmp_path / fn["name"] / "main.py").read_text() == main


def test_bundle_zip_ignores_timestamps(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "pkg").mkdir(parents=True)
    (bundle / "main.py").write_text("x = 1\n")
    (bundle / "pkg" / "a.py").write_text("y = 2\n")
    package.write_zip(bundle, tmp_path / "first.zip")
    for path in bundle.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    package.write_zip(bundle, tmp_path / "second.zip")
    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()


def test_bundle_main_imports_the_entry_point(tmp_path: Path) -> None:
    package.main(["--out", str(tmp_path)])
    env = {"PATH": "/usr/bin:/bin", "PROFILE": "test", "GOOGLE_CLOUD_PROJECT": "demo-infra-test"}
    for fn in deployed():
        bundle = tmp_path / fn["name"]
        check = f"import main, functions; assert callable(main.{fn['name']}); print(functions.__file__)"
        result = subprocess.run(
            [sys.executable, "-c", check], cwd=bundle, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert Path(result.stdout.strip()).resolve().is_relative_to(bundle.resolve())


# ---- with the terraform binary only -------------------------------------------------------------


def console(expression: str) -> Any:
    """Evaluate `expression` in the manifests module (no provider, no init) and decode its JSON."""
    result = subprocess.run(
        [
            str(TERRAFORM),
            f"-chdir={MANIFESTS}",
            "console",
            f"-var=routes_file={ROOT / 'functions' / 'routes.json'}",
            f"-var=indexes_file={ROOT / 'firestore.indexes.json'}",
        ],
        input=f"jsonencode({expression})\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(json.loads(result.stdout.strip()))


def lb_regex(template: str) -> re.Pattern[str]:
    """What a URL-map path template matches: `{x=*}` one segment, `{x=**}` the rest."""
    pattern = re.sub(r"\\\{\w+=\\\*\\\*\\\}", ".*", re.escape(template))
    pattern = re.sub(r"\\\{\w+=\\\*\\\}", "[^/]+", pattern)
    return re.compile(f"^{pattern}$")


if TERRAFORM:

    def test_terraform_fmt() -> None:
        result = subprocess.run(
            [str(TERRAFORM), "fmt", "-check", "-recursive", "-diff", str(INFRA)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_load_balancer_routes_like_the_local_gateway() -> None:
        evaluated = console("{ functions = local.functions, lb_routes = local.lb_routes }")
        assert set(evaluated["functions"]) == {f["name"] for f in deployed()}
        public = [f for f in deployed() if not evaluated["functions"][f["name"]]["internal"]]
        local_table = [(path_regex(p), f["name"]) for f in public for p in f["paths"]]
        lb_table = [(lb_regex(r["template"]), r["function"]) for r in evaluated["lb_routes"]]
        assert [r["path"] for r in evaluated["lb_routes"]] == [p for f in public for p in f["paths"]]
        for fn in public:
            for path in fn["paths"]:
                sample = re.sub(r"\{\w+\}", "abc123", path).replace("**", "x/y")
                local = next(name for rx, name in local_table if rx.match(sample))
                remote = next(name for rx, name in lb_table if rx.match(sample))
                assert remote == local, sample

    def test_firestore_index_keys_are_unique() -> None:
        doc = json.loads((ROOT / "firestore.indexes.json").read_text())
        assert len(console("local.firestore_indexes")) == len(doc["indexes"])
