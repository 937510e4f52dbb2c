"""The ClientApp every node runs. Each handler replies only through the node's egress guard.

A refusal (site policy, budget, bad local data), and any other failure, becomes an error reply that carries a
rule name and that rule's fixed sentence (`federation.messages.error_reply`), logged by the guard as an
`error` message before it leaves; what exactly went wrong stays in the node's own log (`ERROR_DETAILS`).
"""
from __future__ import annotations

import functools
import json
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode

from clients import evaluation, horizontal, vertical
from clients.node import Node, recall_accountant, run_key, send
from clients.site_policy import load_site_policy
from dp_accounting import privacy_report
from clients.egress import EgressGuard, bytes_digest
from federation.errors import ConfigError, PulseTwinError
from federation.output import progress
from federation.messages import DPSettings, ErrorReply, TaskSettings, error_reply, from_config

app = ClientApp()

ERROR_CODE_REFUSED = 403


ERROR_DETAILS = Path("state") / "logs" / "error-replies.jsonl"   # what went wrong, for the node's operator only


def refusals_as_error_replies(handler: Callable[[Message, Context], Message]) -> Callable[[Message, Context], Message]:
    """Turn anything a handler raises into an error reply naming a rule with its fixed sentence; the detail
    (which may hold a path, a line, a raw value) stays in the node's own log."""

    @functools.wraps(handler)
    def wrapped(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except Exception as err:   # noqa: BLE001 - a bug's text must not leave the node either
            return error_response(msg, context, err)

    return wrapped


def error_response(msg: Message, context: Context, err: BaseException, node_dir: Path | None = None) -> Message:
    """The one way a node answers with an error: `federation.messages.error_reply(err)`'s rule and sentence
    leave (logged by the guard as an `error` message); the exception's text goes to the node's own log."""
    reply = error_reply(err)
    code = ERROR_CODE_REFUSED if isinstance(err, PulseTwinError) else int(ErrorCode.CLIENT_APP_RAISED_EXCEPTION)
    detail = f"{type(err).__name__}: {err}"
    if not isinstance(err, PulseTwinError):   # a bug: its traceback, for whoever fixes it
        detail += "\n" + "".join(traceback.format_exception(err)).rstrip()
    log_error_reply(msg, context, reply, detail, node_dir)
    return Message(Error(code=code, reason=reply.text), reply_to=msg)


def log_error_reply(msg: Message, context: Context, reply: ErrorReply, detail: str,
                    node_dir: Path | None = None) -> None:
    """Error replies also leave the node: put them on the egress record, and the detail in the node's own
    error log (never fails the reply)."""
    from clients.egress import Egress

    config = msg.content.config_records.get("config", {}) if msg.has_content() else {}
    try:
        node_dir = node_dir or Node.from_context(context).node_dir
        run_id = run_key(config.get("run-name", "run"), context)
        path = Path(node_dir) / ERROR_DETAILS
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "run_id": run_id,
                                     "message": msg.metadata.message_type, "rule": reply.rule, "detail": detail}) + "\n")
        guard = EgressGuard.open(node_dir)
        sha, nbytes = bytes_digest(reply.text.encode())
        guard.release(Egress(run_id=run_id, round=int(config.get("server-round", config.get("exchange", 0))),
                             kind="error", run_kind=str(config.get("run-kind", "horizontal")),
                             payload_sha256=sha, payload_bytes=nbytes, params={"rule": reply.rule},
                             fields=("error.code", "error.reason")))
    except (PulseTwinError, OSError, ValueError):
        # e.g. no node directory at all: nothing to log into; the detail goes to the node's own terminal, and
        # the fixed reply still goes out
        progress(f"error reply '{reply.text}' ({msg.metadata.message_type}): {detail}")


# The node's roles: horizontal DP-SGD rounds, and the vertical partner's PSI, alignment and DP release.
app.train()(refusals_as_error_replies(horizontal.train))
app.evaluate()(refusals_as_error_replies(evaluation.evaluate))
for _action, _handler in {"psi": vertical.psi, "align": vertical.align, "release": vertical.release}.items():
    app.query(_action)(refusals_as_error_replies(_handler))


@app.query("describe")
@refusals_as_error_replies
def describe(msg: Message, context: Context) -> Message:
    """Who this node is, which blocks it has built and, in a horizontal run, its training rows (every update
    states them anyway) and whether it trains with DP-SGD or takes part through its DP release."""
    node = Node.from_context(context)
    config = msg.content["config"]
    wanted = tuple(str(config.get("blocks", "")).split(","))
    facts: dict[str, str | int] = {"name": node.name, "blocks": ",".join(node.available_blocks(wanted))}
    if "min-rows" in config:   # a horizontal run: can this node train with DP-SGD at the run's privacy?
        task, dp = from_config(TaskSettings, config), from_config(DPSettings, config)
        try:
            rows = len(node.training_examples(task))
            facts.update({"rows": rows, "role": "dp-sgd" if rows >= dp.min_rows else "release"})
            if rows >= dp.min_rows:
                horizontal.warm_up(task, dp, load_site_policy(node.node_dir))
        except ConfigError:   # no rows to train on: its train replies will say why, naming the node
            facts["role"] = "dp-sgd"
    content = RecordDict({"node": ConfigRecord(facts)})
    return send(msg, content, EgressGuard.open(node.node_dir), run_id=run_key(config["run-name"], context),
                round=0, kind="public-fact", run_kind=str(config.get("run-kind", "horizontal")))


@app.query("privacy")
@refusals_as_error_replies
def privacy(msg: Message, context: Context) -> Message:
    """The node's privacy report, recomputed from its ledger (public: a function of released parameters)."""
    node = Node.from_context(context)
    config = msg.content["config"]
    guard = EgressGuard.open(node.node_dir)
    recall_accountant(context)
    p = guard.policy.privacy
    k, source = node.person_rows()
    source = source and "the node's features manifest (privacy_unit.max_rows_per_person)"   # no path leaves
    report = privacy_report(guard.ledger, p.delta, k=k, k_source=source, max_rounds=50,
                            accountant=p.accountant, caps=guard.policy.budget_caps())
    public = {**report.to_dict(), "ledger": f"node {node.name}'s privacy ledger"}   # its path stays on the node
    content = RecordDict({"privacy": ConfigRecord({"name": node.name, "report": json.dumps(public)})})
    return send(msg, content, guard, run_id=run_key(config["run-name"], context), round=0,
                kind="public-fact", run_kind=str(config.get("run-kind", "horizontal")))
