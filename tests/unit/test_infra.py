"""Offline checks of the deployment: Terraform (parsed with python-hcl2), firestore.indexes.json, the
source bundles of dev/package.py, the alarms and their runbook, and checkov's place in `make lint`.

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
    "WEBHOOK_SECRET_KEY": "webhook-secret-key",
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
    "EXPIRY_QUEUE",
    "WAITLIST_QUEUE",
    "TASKS_TARGET_BASE_URL",
    "TASKS_INVOKER_SERVICE_ACCOUNT",
    "WEBHOOK_QUEUE",
    "WEBHOOK_SENDER_URL",
    "WEBHOOK_INVOKER_SERVICE_ACCOUNT",
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
    assert [unquote(t) for t in variables[("topics",)]["default"]] == [
        "payment-events",
        "booking-confirmed",
        "integration-events",
    ]
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


# ---- topics, subscriptions, queues --------------------------------------------------------------

# Functions whose commits write domain events: each relays them to integration-events after the commit.
EVENT_WRITERS = ("bookings", "payments", "webhooks", "finaliser", "tasks", "checkin", "events", "users")
# Functions that create outbound webhook delivery tasks (as the webhook invoker).
DELIVERERS = {"fanout", "sender", "integrations", "tasks"}


def function_access() -> dict[str, dict[str, Any]]:
    return blocks(MODULE, "variable")[("function_access",)]["default"]


def topics() -> list[str]:
    return [unquote(t) for t in blocks(MODULE, "variable")[("topics",)]["default"]]


def test_every_topic_of_routes_json_exists() -> None:
    consumed = {fn["topic"] for fn in deployed() if fn.get("topic")}
    assert consumed >= {"payment-events", "booking-confirmed", "integration-events"}
    assert consumed <= set(topics()), consumed - set(topics())
    assert resource(MODULE, "google_pubsub_topic", "topic")["for_each"] == "${toset(var.topics)}"
    for name, access in function_access().items():
        for topic in access.get("publish", []):
            assert unquote(topic) in topics(), f"{name} publishes to {topic}, which is not created"


def test_event_writers_may_publish_to_integration_events() -> None:
    access = function_access()
    for name in EVENT_WRITERS:
        assert any(fn["name"] == name for fn in deployed()), name
        assert "integration-events" in [unquote(t) for t in access[name].get("publish", [])], name
    # what each published before stays
    assert {"booking-confirmed"} <= {unquote(t) for t in access["bookings"]["publish"]}
    assert {"payment-events"} <= {unquote(t) for t in access["payments"]["publish"]}
    assert {"payment-events"} <= {unquote(t) for t in access["webhooks"]["publish"]}
    assert {"booking-confirmed"} <= {unquote(t) for t in access["finaliser"]["publish"]}
    assert {"payment-events", "booking-confirmed"} <= {unquote(t) for t in access["tasks"]["publish"]}
    publisher = resource(MODULE, "google_pubsub_topic_iam_member", "publisher")
    assert publisher["for_each"] == "${local.publishers}"


def test_every_push_subscription_retries_and_dead_letters() -> None:
    assert locals_of(MODULE)["subscribers"] == "${{for name, f in local.functions : name => f if f.topic != null}}"
    push = resource(MODULE, "google_pubsub_subscription", "push")
    assert push["for_each"] == "${local.subscribers}"
    retry = push["retry_policy"][0]
    assert unquote(retry["minimum_backoff"]) == "10s"
    assert unquote(retry["maximum_backoff"]) == "600s"
    dead = push["dead_letter_policy"][0]
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.dead_letter[each.key].id}"
    assert dead["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    attempts = blocks(MODULE, "variable")[("max_delivery_attempts",)]["default"]
    assert 5 <= attempts <= 100
    # the dead letters have somewhere to go before the first one is forwarded
    assert "${google_pubsub_subscription.dead_letter}" in push["depends_on"]
    assert "${google_pubsub_topic_iam_member.dead_letter_publisher}" in push["depends_on"]

    topic = resource(MODULE, "google_pubsub_topic", "dead_letter")
    assert topic["for_each"] == "${local.subscribers}"
    keep = resource(MODULE, "google_pubsub_subscription", "dead_letter")
    assert keep["for_each"] == "${local.subscribers}"
    assert keep["topic"] == "${google_pubsub_topic.dead_letter[each.key].id}"
    assert "push_config" not in keep, "dead letters wait in a pull subscription to be inspected and replayed"
    assert keep["retain_acked_messages"] is True
    assert unquote(keep["message_retention_duration"]) == "604800s"
    assert unquote(keep["expiration_policy"][0]["ttl"]) == ""
    assert unquote(topic["name"]) == unquote(keep["name"])
    assert unquote(keep["name"]).endswith("-dead-letter")

    # The Pub/Sub service agent forwards dead letters: publisher on the dead-letter topics, subscriber
    # on the subscriptions it takes them from.
    agent = locals_of(MODULE)["pubsub_service_agent"]
    assert "gcp-sa-pubsub.iam.gserviceaccount.com" in agent
    publisher = resource(MODULE, "google_pubsub_topic_iam_member", "dead_letter_publisher")
    assert publisher["for_each"] == "${local.subscribers}"
    assert publisher["topic"] == "${google_pubsub_topic.dead_letter[each.key].name}"
    assert unquote(publisher["role"]) == "roles/pubsub.publisher"
    assert publisher["member"] == "${local.pubsub_service_agent}"
    subscriber = resource(MODULE, "google_pubsub_subscription_iam_member", "dead_letter_subscriber")
    assert subscriber["for_each"] == "${local.subscribers}"
    assert subscriber["subscription"] == "${google_pubsub_subscription.push[each.key].name}"
    assert unquote(subscriber["role"]) == "roles/pubsub.subscriber"
    assert subscriber["member"] == "${local.pubsub_service_agent}"


@pytest.mark.parametrize(
    ("queue", "variable", "default"),
    [
        ("expiry", "expiry_queue", "booking-expiry"),
        ("waitlist", "waitlist_queue", "waitlist-serve"),
        ("webhook", "webhook_queue", "webhook-deliveries"),
    ],
)
def test_queues_exist_with_their_variables(queue: str, variable: str, default: str) -> None:
    variables = blocks(MODULE, "variable")
    assert unquote(variables[(variable,)]["default"]) == default
    body = resource(MODULE, "google_cloud_tasks_queue", queue)
    assert body["name"] == f"${{var.{variable}}}"
    assert body["location"] == "${var.region}"
    assert body["rate_limits"][0]["max_dispatches_per_second"] > 0
    assert body["retry_config"][0]["max_attempts"] > 0
    assert locals_of(MODULE)["env"][variable.upper()] == f"${{var.{variable}}}"


def test_webhook_queue_retries_only_the_task_call() -> None:
    """The application schedules each next attempt itself (5 s ... 10 h): the queue only covers a task
    call that failed on the way, briefly, and is sized for fan-out."""
    queue = resource(MODULE, "google_cloud_tasks_queue", "webhook")
    retry = queue["retry_config"][0]
    assert retry["max_attempts"] <= 5
    assert int(unquote(retry["max_retry_duration"]).removesuffix("s")) <= 600
    assert int(unquote(retry["max_backoff"]).removesuffix("s")) <= 60
    limits = queue["rate_limits"][0]
    assert limits["max_dispatches_per_second"] >= 100
    assert limits["max_concurrent_dispatches"] >= 50


# ---- outbound webhooks: the new functions and who may call what ---------------------------------


def test_the_webhook_functions_are_deployed_as_intended() -> None:
    by_name = {fn["name"]: fn for fn in deployed()}
    integrations, sender, fanout = by_name["integrations"], by_name["sender"], by_name["fanout"]
    assert not integrations.get("internal")
    assert "topic" not in integrations
    assert "/v1/webhook-endpoints" in integrations["paths"]
    assert sender.get("internal") is True
    assert "topic" not in sender
    assert fanout.get("internal") is True
    assert fanout["topic"] == "integration-events"
    assert fanout["push_path"] == "/pubsub/integration-events"
    assert unquote(blocks(MODULE, "variable")[("webhook_sender_function",)]["default"]) == "sender"
    # internal functions (the sender among them) accept only internal traffic
    service = resource(MODULE, "google_cloudfunctions2_function", "fn")["service_config"][0]
    assert service["ingress_settings"] == '${each.value.internal ? "ALLOW_INTERNAL_ONLY" : "ALLOW_INTERNAL_AND_GCLB"}'


def test_only_the_webhook_invoker_may_call_the_sender() -> None:
    invoker = resource(MODULE, "google_service_account", "webhook_invoker")
    assert unquote(invoker["account_id"]) == "webhook-invoker"
    sender = resource(MODULE, "google_cloud_run_service_iam_member", "webhook_sender")
    assert sender["for_each"] == (
        "${{for name, f in local.internal_functions : name => f if name == var.webhook_sender_function}}"
    )
    assert unquote(sender["role"]) == "roles/run.invoker"
    assert sender["member"] == '"serviceAccount:${google_service_account.webhook_invoker.email}"'
    internal = resource(MODULE, "google_cloud_run_service_iam_member", "internal")
    assert internal["for_each"] == (
        "${{for name, f in local.internal_functions : name => f if name != var.webhook_sender_function}}"
    )
    # the webhook invoker is granted nothing else, and no function's own account may invoke anything
    for (rtype, name), body in blocks(MODULE, "resource").items():
        member = str(body.get("member", ""))
        if "google_service_account.webhook_invoker" in member:
            assert (rtype, name) == ("google_cloud_run_service_iam_member", "webhook_sender")
        if unquote(body.get("role", "")) == "roles/run.invoker":
            assert "google_service_account.fn[" not in member, f"{rtype}.{name} lets a function invoke another"


def test_the_sender_cannot_act_as_the_internal_invoker() -> None:
    access = function_access()
    assert not access["sender"].get("enqueue"), "the sender must not enqueue as the internal invoker"
    assert access["sender"].get("deliver") is True
    assert not access["sender"].get("publish")
    acts_as = resource(MODULE, "google_service_account_iam_member", "enqueuer_acts_as_invoker")
    assert acts_as["service_account_id"] == "${google_service_account.invoker.name}"
    assert acts_as["for_each"] == "${{for name, a in local.access : name => a if a.enqueue}}"
    (precondition,) = acts_as["lifecycle"][0]["precondition"]
    assert precondition["condition"] == "${each.key != var.webhook_sender_function}"
    # nothing else grants actAs or token creation on the internal invoker to a function
    for (rtype, name), body in blocks(MODULE, "resource").items():
        if rtype == "google_service_account_iam_member" and body["service_account_id"] == (
            "${google_service_account.invoker.name}"
        ):
            assert name in ("enqueuer_acts_as_invoker", "pubsub_token_creator"), name


def test_delivery_tasks_are_created_as_the_webhook_invoker() -> None:
    access = function_access()
    assert {name for name, a in access.items() if a.get("deliver")} == DELIVERERS
    enqueuer = resource(MODULE, "google_cloud_tasks_queue_iam_member", "webhook_enqueuer")
    assert enqueuer["for_each"] == "${{for name, a in local.access : name => a if a.deliver}}"
    assert enqueuer["name"] == "${google_cloud_tasks_queue.webhook.name}"
    assert unquote(enqueuer["role"]) == "roles/cloudtasks.enqueuer"
    acts_as = resource(MODULE, "google_service_account_iam_member", "deliverer_acts_as_webhook_invoker")
    assert acts_as["for_each"] == "${{for name, a in local.access : name => a if a.deliver}}"
    assert acts_as["service_account_id"] == "${google_service_account.webhook_invoker.name}"
    assert unquote(acts_as["role"]) == "roles/iam.serviceAccountUser"
    # the expiry and waitlist queues stay with the functions that have `enqueue`
    for name in ("enqueuer", "waitlist_enqueuer"):
        body = resource(MODULE, "google_cloud_tasks_queue_iam_member", name)
        assert body["for_each"] == "${{for name, a in local.access : name => a if a.enqueue}}"


def test_webhook_settings_reach_every_function() -> None:
    module_locals = locals_of(MODULE)
    env = module_locals["env"]
    assert env["WEBHOOK_QUEUE"] == "${var.webhook_queue}"
    assert env["WEBHOOK_SENDER_URL"] == "${local.webhook_sender_url}"
    assert env["WEBHOOK_INVOKER_SERVICE_ACCOUNT"] == "${google_service_account.webhook_invoker.email}"
    url = module_locals["webhook_sender_url"]
    assert "local.functions[var.webhook_sender_function].cloud_name" in url
    # built exactly like the tasks function's URL
    assert url.replace("webhook_sender_function", "tasks_function") == module_locals["tasks_target_base_url"]


def test_sender_egress_connector_is_optional_and_off_by_default() -> None:
    variable = blocks(MODULE, "variable")[("webhook_sender_vpc_connector",)]
    assert unquote(variable["default"]) == ""
    service = resource(MODULE, "google_cloudfunctions2_function", "fn")["service_config"][0]
    assert "each.key == var.webhook_sender_function" in service["vpc_connector"]
    assert "ALL_TRAFFIC" in service["vpc_connector_egress_settings"]


# ---- alarms, dashboard, runbook -----------------------------------------------------------------

RUNBOOK = ROOT / "docs" / "runbook.md"
# alert policy -> the runbook section its documentation links
ALERTS = {
    "server_errors": "5xx-rate",
    "webhook_intake_failures": "webhook-intake-failures",
    "dead_letters": "dead-letters",
    "payments_needing_attention": "payments-needing-attention",
    "webhook_endpoints_disabled": "webhook-endpoint-disabled",
    "hold_latency": "hold-latency",
}


def anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the headings of a markdown text."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def metric(name: str) -> dict[str, Any]:
    return resource(MODULE, "google_logging_metric", name)


def filter_of(name: str) -> str:
    request_log = unquote(locals_of(MODULE)["request_log"]).replace('\\"', '"')
    return unquote(metric(name)["filter"]).replace("${local.request_log}", request_log).replace('\\"', '"')


def test_every_alert_policy_exists_notifies_and_links_the_runbook() -> None:
    policies = {
        name: body
        for (rtype, name), body in blocks(MODULE, "resource").items()
        if rtype == "google_monitoring_alert_policy"
    }
    assert set(policies) == set(ALERTS)
    variable = blocks(MODULE, "variable")[("notification_channels",)]
    assert variable["default"] == []
    for env in ENVIRONMENTS:
        module = blocks(INFRA / "environments" / env, "module")[("ticketing",)]
        assert module["notification_channels"] == "${var.notification_channels}", env
        assert module["runbook_url"] == "${var.runbook_url}", env
    runbook_anchors = anchors(RUNBOOK.read_text())
    for name, body in policies.items():
        assert body["notification_channels"] == "${var.notification_channels}", name
        assert body["conditions"], name
        documentation = body["documentation"][0]
        assert unquote(documentation["mime_type"]) == "text/markdown"
        assert f"${{local.runbook}}#{ALERTS[name]}" in documentation["content"], name
        assert ALERTS[name] in runbook_anchors, f"docs/runbook.md has no section #{ALERTS[name]}"


def test_log_metrics_match_what_the_functions_log() -> None:
    assert 'jsonPayload.logger="http"' in filter_of("http_requests")
    assert "httpRequest.status" in metric("http_requests")["label_extractors"]["status_class"]
    intake = filter_of("webhook_intake_failures")
    assert 'httpRequest.requestUrl="/v1/webhooks/stripe"' in intake
    assert "httpRequest.status>=400" in intake
    assert any("/v1/webhooks/stripe" in fn.get("paths", []) for fn in deployed())
    assert filter_of("payments_needing_attention") == 'jsonPayload.alert="payment_attention"'
    assert filter_of("webhook_endpoints_disabled") == 'jsonPayload.alert="webhook_endpoint_disabled"'

    hold = metric("hold_latency")
    assert unquote(hold["metric_descriptor"][0]["value_type"]) == "DISTRIBUTION"
    assert unquote(hold["metric_descriptor"][0]["unit"]) == "s"
    assert "httpRequest.latency" in hold["value_extractor"]
    hold_filter = filter_of("hold_latency")
    assert 'httpRequest.requestMethod="POST"' in hold_filter
    (pattern,) = re.findall(r'httpRequest\.requestUrl=~"([^"]+)"', hold_filter)
    hold_path = re.compile(pattern)
    assert "/v1/events/{event_id}/bookings" in next(fn for fn in deployed() if fn["name"] == "bookings")["paths"]
    assert hold_path.match("/v1/events/ev_123/bookings")
    for other in ("/v1/events/ev_123/bookings/x", "/v1/events/ev_123", "/v1/bookings", "/v1/events//bookings"):
        assert not hold_path.match(other), other
    # the latency as Cloud Logging writes it ("0.0123s") is what the extractor reads
    (extract,) = re.findall(r'REGEXP_EXTRACT\(httpRequest\.latency, \\"(.+)\\"\)', unquote(hold["value_extractor"]))
    assert re.search(extract, "0.0123s").group(1) == "0.0123"


def test_alert_conditions_read_the_right_metrics() -> None:
    def conditions(name: str) -> list[dict[str, Any]]:
        body = resource(MODULE, "google_monitoring_alert_policy", name)
        return [c["condition_threshold"][0] for c in body["conditions"]]

    filters = locals_of(MODULE)["metric_filter"]
    assert "num_undelivered_messages" in locals_of(MODULE)["dead_letter_filter"]
    assert "google_pubsub_subscription.dead_letter" in locals_of(MODULE)["dead_letter_filter"]
    (dead,) = conditions("dead_letters")
    assert dead["filter"] == "${local.dead_letter_filter}"
    assert dead["threshold_value"] == 0
    assert unquote(dead["comparison"]) == "COMPARISON_GT"
    app, lb = conditions("server_errors")
    assert 'metric.label.status_class=\\"5\\"' in app["filter"]
    assert app["denominator_filter"] == "${local.metric_filter.requests}"
    assert "loadbalancing.googleapis.com/https/request_count" in lb["filter"]
    assert "response_code_class=500" in lb["filter"]
    (hold,) = conditions("hold_latency")
    assert hold["threshold_value"] == "${var.hold_latency_p95_seconds}"
    assert blocks(MODULE, "variable")[("hold_latency_p95_seconds",)]["default"] == 1
    assert unquote(hold["aggregations"][0]["cross_series_reducer"]) == "REDUCE_PERCENTILE_95"
    for name, key in (
        ("payments_needing_attention", "attention"),
        ("webhook_endpoints_disabled", "disabled"),
        ("webhook_intake_failures", "intake"),
        ("hold_latency", "hold"),
    ):
        assert conditions(name)[0]["filter"] == f"${{local.metric_filter.{key}}}", name
    assert "google_logging_metric.http_requests.name" in str(filters)


def test_dashboard_shows_the_alarms_metrics() -> None:
    dashboard = resource(MODULE, "google_monitoring_dashboard", "ticketing")
    assert dashboard["dashboard_json"].startswith("${jsonencode(")
    tiles = str(locals_of(MODULE)["dashboard_tiles"])
    for key in ("requests", "hold", "intake", "attention", "disabled"):
        assert f"local.metric_filter.{key}" in tiles, key
    assert "local.dead_letter_filter" in tiles
    assert "REDUCE_PERCENTILE_95" in tiles


def test_runbook_covers_every_alarm_and_the_replay() -> None:
    text = RUNBOOK.read_text()
    for needle in (
        "GET /v1/attention",
        "GET /v1/webhook-endpoints/{id}/deliveries",
        "/retry",
        "PATCH /v1/webhook-endpoints/{id}",
        "gcloud pubsub subscriptions pull",
        "gcloud pubsub subscriptions seek",
    ):
        assert needle in text, needle
    assert "replay" in anchors(text) or any(a.startswith("replay") for a in anchors(text))


# ---- checkov in `make lint` ---------------------------------------------------------------------


def make_rule(target: str) -> tuple[str, list[str]]:
    """Prerequisites and recipe lines of one Makefile rule."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith(f"{target}:")]
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return lines[start].split(":", 1)[1], recipe


def test_checkov_runs_in_make_lint_offline() -> None:
    makefile = (ROOT / "Makefile").read_text()
    prerequisites, recipe = make_rule("lint")
    assert ".venv-checkov/.installed" in prerequisites.split()
    (call,) = [line for line in recipe if "$(CHECKOV)" in line]
    assert "-d infra/terraform" in call
    assert "--framework terraform" in call
    assert "--skip-download" in call
    (definition,) = [line for line in makefile.splitlines() if line.startswith("CHECKOV :=")]
    assert ".venv-checkov/bin/checkov" in definition
    assert "-u BC_API_KEY" in definition
    assert "CKV_SKIP_PACKAGE_UPDATE_CHECK=true" in definition
    # `make dev` and `make test` do not wait for it
    assert ".venv-checkov" not in make_rule("install")[0]
    pins = (ROOT / "requirements-checkov.txt").read_text()
    assert re.search(r"^checkov==\d+\.\d+\.\d+$", pins, re.M)


def test_checkov_skips_are_inline_with_a_reason() -> None:
    assert not (INFRA / ".checkov.yaml").exists()
    assert not (ROOT / ".checkov.yaml").exists()
    for path in TF_FILES:
        for match in re.finditer(r"checkov:skip=([A-Z0-9_]+)(.*)", path.read_text()):
            check, reason = match.group(1), match.group(2)
            assert re.fullmatch(r"CKV2?_GCP_\d+", check), f"{path}: {check}"
            assert reason.startswith(":"), f"{path}: {check} skipped without a reason"
            assert len(reason.strip(": ")) >= 40, f"{path}: {check} skipped without a reason"


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
    ("webhook_deliveries", (("endpoint_id", A), ("created_at", D))),  # an endpoint's delivery log, newest first
    ("webhook_deliveries", (("state", A), ("next_attempt_at", A))),  # the sweep: attempts a lost task left
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
