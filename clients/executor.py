"""The node's own ClientApp executor: Flower's process isolation, with the node's installed code in charge.

`flower-supernode --isolation process` starts no ClientApp of its own: it keeps each message it pulls from
the SuperLink as a task on its Runtime API (loopback only, claims signed with a secret only this node
holds) and waits for an executor to claim it. This executor is part of the node's installed PULSE-TWIN.
For each task it pulls the run's app bundle, run configuration and message, and before anything answers
it checks them against the site's approvals (`clients.admission`): the bundle's code hash (computed from
its bytes, nothing of it unpacked or imported), the approved proposal and every privacy parameter the
message carries. An admitted message is handled by the node's installed ClientApp (`clients.app`) in this
long-running process, so the bundle's own code never runs on the node and no process starts per message.
A refusal becomes an error reply naming the rule, itself logged by the egress guard before it leaves.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flwr.app import Context, Message
from flwr.common.constant import SubStatus
from flwr.common.serde import context_from_proto, fab_from_proto, run_from_proto
from flwr.proto.node_pb2 import Node  # pylint: disable=E0611
from flwr.proto.runtime_pb2 import (  # pylint: disable=E0611
    AcquireTaskRequest,
    PullAppMessagesRequest,
    PullTaskInputRequest,
    SendTaskHeartbeatRequest,
)
from flwr.supercore.fab import Fab
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity
from flwr.supercore.constant import TaskType
from flwr.supercore.interceptors import (
    RuntimeTokenHttpInterceptor,
    RuntimeVersionHttpInterceptor,
    SuperExecAuthHttpInterceptor,
)
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

from clients.admission import admit_message, admit_run, refusal_reason
from federation import profile
from federation.bundle import fab_code_hash
from federation.errors import PolicyRefusal, PulseTwinError
from federation.messages import error_reply
from federation.output import progress

HEARTBEAT_S = 10.0                # Flower expires a claimed task after 60 s without a heartbeat
# The SuperNode offers a task before it holds the message's content (it pulls that from the SuperLink next), so
# a prompt claim finds the content missing at first. Flower's own pull then waits 1 s, 2 s, 4 s ... (its default
# for a freshly started ClientApp process); this executor is already running, so it asks again sooner.
PULL_BACKOFF_S, PULL_BACKOFF_CAP_S = 0.05, 0.5
PROFILE = Path("state") / "logs" / profile.FILE   # per message, when profiling is on (`federation.profile`)
ACQUIRE_METHOD = "/flwr.proto.Runtime/AcquireTask"


@dataclass
class Executor:
    """Claims the SuperNode's tasks one at a time and answers them with the node's installed ClientApp."""

    node_dir: Path
    runtime_address: str
    secret: bytes
    poll_s: float = 0.2
    preload: bool = False             # import the ClientApp at start (see `serve`), not with the first message
    say: Callable[[str], None] = progress
    stop: threading.Event = field(default_factory=threading.Event)
    busy: threading.Event = field(default_factory=threading.Event)     # set while a task is being answered
    _hashes: dict[str, str] = field(default_factory=dict)               # SHA-256 of a bundle's bytes -> code hash
    _seen: set[int] = field(default_factory=set)

    def serve(self) -> None:
        """Claim and answer tasks until `stop` is set."""
        logging.getLogger("flwr").setLevel(logging.WARNING)
        if self.preload:   # while the SuperNode connects; a message that comes first waits on the import lock
            threading.Thread(target=_import_client_app, name="pulse-twin-preload", daemon=True).start()
        claims = self._client([RuntimeVersionHttpInterceptor(component_name="SuperExec"),
                               SuperExecAuthHttpInterceptor(master_secret=self.secret,
                                                            protected_methods={ACQUIRE_METHOD})])
        try:
            while not self.stop.is_set():
                try:
                    res = claims.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP]))
                except Exception:  # the SuperNode is starting or gone: its supervisor decides
                    self.stop.wait(1.0)
                    continue
                if res.HasField("task") and res.token:
                    self._task(res.token, res.task.pending_at)
                else:
                    self.stop.wait(self.poll_s)
        finally:
            claims.close()

    def _client(self, interceptors: list) -> RuntimeHttpClient:
        return RuntimeHttpClient.from_server_address(server_address=self.runtime_address, insecure=True,
                                                     root_certificates=None, interceptors=interceptors)

    def _task(self, token: str, pending_at: str = "") -> None:
        with profile.collect(self.node_dir / PROFILE, pending_at=_stamp(pending_at)):
            self._answer_task(token)

    def _answer_task(self, token: str) -> None:
        client = self._client([RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                               RuntimeTokenHttpInterceptor(token)])
        beating = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(client, beating), daemon=True)
        context: Context | None = None
        status, details = SubStatus.FAILED, "the node's executor stopped before answering"
        self.busy.set()
        try:
            with profile.span("pull_task_input"):
                message, context, _run, fab = pull_task_input(client)
            profile.note(message_type=message.metadata.message_type, created_at=message.metadata.created_at,
                         run_id=context.run_id)
            beat.start()
            reply = self.answer(message, context, fab.content)
            with profile.span("push"):
                push_message(client, reply, context)
            status, details = SubStatus.COMPLETED, ""
        except Exception as err:  # a broken task must not stop the node; the coordinator sees no reply
            self.say(f"task failed: {type(err).__name__}: {err}")
            details = error_reply(err).text   # what reaches the SuperLink: a rule and its fixed sentence
        finally:
            beating.set()
            try:
                with profile.span("push"):
                    push_task_output(client=client, context=context, sub_status=status, details=details)
            finally:
                client.close()
                self.busy.clear()

    def code_hash(self, fab: bytes) -> str:
        """The code hash of a bundle, computed once per distinct bundle. The cache is keyed by the SHA-256 of the
        bytes this node received, never by the hash the SuperLink states for them (Flower does not check that one
        against the bytes): other bytes under a known name are hashed afresh."""
        key = hashlib.sha256(fab).hexdigest()
        if key not in self._hashes:
            self._hashes[key] = fab_code_hash(fab)
        return self._hashes[key]

    def answer(self, message: Message, context: Context, fab: bytes) -> Message:
        """The reply to one message: a refusal naming the rule, or the installed ClientApp's answer. The bundle
        is judged by its bytes (`code_hash`), never by the hash the SuperLink states for it."""
        # The node's installed ClientApp, imported with its first message: torch, Opacus and pandas are most of
        # a node's memory, and an idle node (waiting for runs, most of its life) does not need them.
        with profile.span("imports"):
            from clients.app import app, error_response

        config = message.content.config_records.get("config", {}) if message.has_content() else {}
        try:
            with profile.span("bundle_hash"):
                shipped = self.code_hash(fab)
            with profile.span("admission"):
                proposal = admit_run(self.node_dir, context.run_config, fab, shipped)
                admit_message(proposal, message.metadata.message_type, config)
        except PulseTwinError as err:
            reason = refusal_reason(err) if isinstance(err, PolicyRefusal) else f"{type(err).__name__}: {err}"
            self.say(f"run {context.run_id}: REFUSED {message.metadata.message_type}: {reason}")
            return error_response(message, context, err, self.node_dir)
        if context.run_id not in self._seen:
            self._seen.add(context.run_id)
            self.say(f"run {context.run_id} '{proposal.run_name}': admitted (approved proposal "
                     f"{proposal.sha256()[:12]}..., bundle {proposal.bundle_hash[:12]}...)")
        try:
            with profile.span("handler"):
                return app(message=message, context=context)
        except Exception as err:  # a bug in a handler: an error reply, logged like every reply
            self.say(f"run {context.run_id}: {message.metadata.message_type} failed: {type(err).__name__}: {err}")
            return error_response(message, context, err, self.node_dir)


def pull_task_input(client: RuntimeHttpClient) -> tuple[Message, Context, Run, Fab]:
    """The task's run, context, app bundle and message from the SuperNode's Runtime API: Flower's own calls
    (`flwr.supernode.runtime.run_clientapp.pull_task_input`), with a short pause while the content is not there."""
    res = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = res.task_id, res.run.run_id, res.context.node_id
    context, run, fab = context_from_proto(res.context), run_from_proto(res.run), fab_from_proto(res.fab)
    pulled = client.PullMessages(PullAppMessagesRequest())
    if not pulled.messages_list:
        raise RuntimeError("the SuperNode's task holds no message")
    tree, node = pulled.message_object_trees[0], Node(node_id=context.node_id)
    message = pull_and_inflate_object_from_tree(
        tree, make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
        make_confirm_message_received_fn_protobuf(client.ConfirmMessageReceived, node, context.run_id),
        return_type=Message, initial_backoff=PULL_BACKOFF_S, backoff_cap=PULL_BACKOFF_CAP_S)
    message.metadata.__dict__["_message_id"] = tree.object_id   # the deflated message does not carry its own id
    return message, context, run, fab


def _import_client_app() -> None:
    """The node's ClientApp imported, and its DP-SGD run once on made-up rows (`clients.dp_sgd.warm_up`)."""
    import clients.app  # noqa: F401  (the import is the point: torch, Opacus, pandas)
    from clients.dp_sgd import warm_up

    try:
        warm_up()
    except Exception:  # noqa: BLE001 - only a head start: round 1 trains as always, and says what is wrong
        return


def _stamp(iso: str) -> float | None:
    """An ISO time of Flower's (a task's `pending_at`) as seconds since the epoch, if it is one."""
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


def _heartbeat(client: RuntimeHttpClient, done: threading.Event) -> None:
    """Keep the claimed task alive while a long handler (a DP-SGD round) runs."""
    while not done.wait(HEARTBEAT_S):
        try:
            client.SendTaskHeartbeat(SendTaskHeartbeatRequest())
        except Exception:  # the next beat or the task's end will tell
            time.sleep(0)
