"""`heartbeats chat`, `heartbeats conversation` and `heartbeats inbound send`: an agent's event
handlers (client.handlers), the same as the HTTP API's `.../agents/{g}/chat`, `.../conversation`
and `.../inbound`."""

from __future__ import annotations

import sys

import click

from cli.output import JSON_OPTION, echo_json
from cli.runner import run_with_store, run_with_temporal
from client.handlers import conversation, inbound_message, require_handler, send_chat, send_inbound
from contract.handlers import DEFAULT_CHAT_WAIT_SECONDS

TENANT = click.option("--tenant", required=True, metavar="TENANT", help="The tenant.")
APP = click.option("--app", required=True, metavar="APP", help="The installed app.")
AGENT = click.option("--agent", required=True, metavar="AGENT", help="The agent.")


@click.command("chat")
@TENANT
@APP
@AGENT
@click.argument("text")
@click.option("--id", "message_id", metavar="ID",
              help="The message's id: sending the same id again is answered once (default: a new one).")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=1, max=600), default=DEFAULT_CHAT_WAIT_SECONDS,
              show_default=True, help="Seconds to wait for the reply; the agent goes on answering after that.")
@JSON_OPTION
def chat_command(tenant: str, app: str, agent: str, text: str, message_id: str | None, wait_seconds: float,
                 as_json: bool) -> None:
    """Send TEXT to the agent's chat and print its reply (the agent needs `on_chat`).

    The message is one agent turn in the agent's `main` conversation, after the messages before it:
    the agent sees the thread so far, and heartbeats in `main` mode post there too. A reply slower
    than --wait exits with an error; the turn still completes and lands in the conversation.

    JSON: {message_id, reply, provider, model, tokens_in, tokens_out}.

    \b
    Example:
      heartbeats chat --tenant demo --app marketing --agent cmo "How did the launch go?"
    """
    answer = run_with_temporal(
        lambda store: require_handler(store, tenant=tenant, app=app, agent=agent, kind="on_chat"),
        lambda client, store, _: send_chat(client, store, tenant=tenant, app=app, agent=agent, text=text,
                                           message_id=message_id, wait_seconds=wait_seconds))
    if as_json:
        echo_json(answer.model_dump(mode="json"))
        return
    click.echo(answer.reply)


@click.command("conversation")
@TENANT
@APP
@AGENT
@click.option("--mode", type=click.Choice(["main", "dedicated"]), default="main", show_default=True,
              help="main: chats (and heartbeats in main mode); dedicated: the heartbeats' own thread.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="The newest N messages.")
@JSON_OPTION
def conversation_command(tenant: str, app: str, agent: str, mode: str, limit: int, as_json: bool) -> None:
    """Print an agent's conversation thread, oldest message first.

    Roles: user (a chat message), assistant (the agent: chat replies and heartbeat posts), inbound
    (an inbound message, when its handler keeps a thread).

    JSON: a list of {id, role, content, created_at}.

    \b
    Example:
      heartbeats conversation --tenant demo --app marketing --agent cmo --mode dedicated
    """
    found = run_with_store(lambda store: conversation(store, tenant=tenant, app=app, agent=agent, mode=mode,  # type: ignore[arg-type]
                                                      limit=limit))
    if as_json:
        echo_json([message.to_json() for message in found])
        return
    if not found:
        click.echo(f"no messages yet in the {mode} conversation of {app}/{agent}")
        return
    for message in found:
        click.echo(f"[{message.created_at.isoformat(timespec='seconds')}] {message.role}:")
        click.echo("  " + message.content.replace("\n", "\n  "))


@click.group("inbound")
def inbound_group() -> None:
    """Inbound messages (email, forms, other systems) handled by an agent's `on_inbound`."""


@inbound_group.command("send")
@TENANT
@APP
@AGENT
@click.option("--id", "message_id", required=True, metavar="ID",
              help="The message's id (e.g. an email's Message-ID): each id is handled once.")
@click.option("--from", "sender", required=True, metavar="SENDER", help="Who sent it.")
@click.option("--subject", default="", help="Its subject.")
@click.argument("text", required=False)
@JSON_OPTION
def inbound_send_command(tenant: str, app: str, agent: str, message_id: str, sender: str, subject: str,
                         text: str | None, as_json: bool) -> None:
    """Hand an inbound message to the agent: one agent turn with its `on_inbound` prompt.

    TEXT is the message body (`-` or none: read from stdin). Returns at once; the turn's receipt is
    under `heartbeats runs WORKFLOW_ID`. The same --id again starts nothing ("duplicate").

    JSON: {workflow_id, message_id, duplicate}.

    \b
    Example:
      heartbeats inbound send --tenant demo --app support --agent triage --id "<m-1@mail>" \\
          --from ada@example.com --subject "Refund" "Please refund order 9."
    """
    body = sys.stdin.read() if text in (None, "-") else text
    message = inbound_message(id=message_id, sender=sender, subject=subject, text=body)
    accepted = run_with_temporal(
        lambda store: require_handler(store, tenant=tenant, app=app, agent=agent, kind="on_inbound"),
        lambda client, store, _: send_inbound(client, store, tenant=tenant, app=app, agent=agent, message=message))
    if as_json:
        echo_json(accepted.to_json())
        return
    what = "already received: nothing new runs" if accepted.duplicate else "accepted"
    click.echo(f"{accepted.workflow_id}: {what}")


COMMANDS: list[click.Command] = [chat_command, conversation_command, inbound_group]
