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

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flwr.app import Context, Message
from flwr.common.constant import SubStatus
from flwr.proto.runtime_pb2 import AcquireTaskRequest, SendTaskHeartbeatRequest  # pylint: disable=E0611
from flwr.supercore.constant import TaskType
from flwr.supercore.interceptors import (
    RuntimeTokenHttpInterceptor,
    RuntimeVersionHttpInterceptor,
    SuperExecAuthHttpInterceptor,
)
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

from clients.admission import admit_message, admit_run, refusal_reason
from federation.bundle import fab_code_hash
from federation.errors import PolicyRefusal, PulseTwinError
from federation.messages import error_reply
from federation.output import progress

HEARTBEAT_S = 10.0                # Flower expires a claimed task after 60 s without a heartbeat
ACQUIRE_METHOD = "/flwr.proto.Runtime/AcquireTask"


@dataclass
class Executor:
    """Claims the SuperNode's tasks one at a time and answers them with the node's installed ClientApp."""

    node_dir: Path
    runtime_address: str
    secret: bytes
    poll_s: float = 0.2
    say: Callable[[str], None] = progress
    stop: threading.Event = field(default_factory=threading.Event)
    busy: threading.Event = field(default_factory=threading.Event)     # set while a task is being answered
    _hashes: dict[str, str] = field(default_factory=dict)               # Flower's FAB hash -> our code hash
    _seen: set[int] = field(default_factory=set)

    def serve(self) -> None:
        """Claim and answer tasks until `stop` is set."""
        logging.getLogger("flwr").setLevel(logging.WARNING)
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
                    self._task(res.token)
                else:
                    self.stop.wait(self.poll_s)
        finally:
            claims.close()

    def _client(self, interceptors: list) -> RuntimeHttpClient:
        return RuntimeHttpClient.from_server_address(server_address=self.runtime_address, insecure=True,
                                                     root_certificates=None, interceptors=interceptors)

    def _task(self, token: str) -> None:
        client = self._client([RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                               RuntimeTokenHttpInterceptor(token)])
        beating = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(client, beating), daemon=True)
        context: Context | None = None
        status, details = SubStatus.FAILED, "the node's executor stopped before answering"
        self.busy.set()
        try:
            message, context, run, fab = pull_task_input(client)
            beat.start()
            reply = self.answer(message, context, run.fab_hash, fab.content)
            push_message(client, reply, context)
            status, details = SubStatus.COMPLETED, ""
        except Exception as err:  # a broken task must not stop the node; the coordinator sees no reply
            self.say(f"task failed: {type(err).__name__}: {err}")
            details = error_reply(err).text   # what reaches the SuperLink: a rule and its fixed sentence
        finally:
            beating.set()
            try:
                push_task_output(client=client, context=context, sub_status=status, details=details)
            finally:
                client.close()
                self.busy.clear()

    def answer(self, message: Message, context: Context, fab_hash: str, fab: bytes) -> Message:
        """The reply to one message: a refusal naming the rule, or the installed ClientApp's answer."""
        # The node's installed ClientApp, imported with its first message: torch, Opacus and pandas are most of
        # a node's memory, and an idle node (waiting for runs, most of its life) does not need them.
        from clients.app import app, error_response

        config = message.content.config_records.get("config", {}) if message.has_content() else {}
        try:
            if fab_hash not in self._hashes:
                self._hashes[fab_hash] = fab_code_hash(fab)
            proposal = admit_run(self.node_dir, context.run_config, fab, self._hashes[fab_hash])
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
            return app(message=message, context=context)
        except Exception as err:  # a bug in a handler: an error reply, logged like every reply
            self.say(f"run {context.run_id}: {message.metadata.message_type} failed: {type(err).__name__}: {err}")
            return error_response(message, context, err, self.node_dir)


def _heartbeat(client: RuntimeHttpClient, done: threading.Event) -> None:
    """Keep the claimed task alive while a long handler (a DP-SGD round) runs."""
    while not done.wait(HEARTBEAT_S):
        try:
            client.SendTaskHeartbeat(SendTaskHeartbeatRequest())
        except Exception:  # the next beat or the task's end will tell
            time.sleep(0)
