"""A relay that tampers with what it carries, as a real process:

    python -m sharedllm.testing.faulty_relay --tamper MODE[,MODE...] [--after-bytes N] ARGS...

After ``N`` bytes towards a node on one connection (default 4096: past the TLS handshake and
into the requests), ``flip`` inverts one byte and ``replay`` sends the last chunk twice;
``cut`` passes the request on and then cuts the caller's connection before the node
answers: the node runs the request (a step, which it pushes on to the next hop) while its
caller sees a broken link. With several modes,
each connection that gets that far takes the next one in turn. ARGS are those of
``sharedllm relay``. End-to-end TLS must turn flip and replay into a broken link, never into
an altered or repeated request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from sharedllm.cli_base import program, run
from sharedllm.relay import cli as relay_cli
from sharedllm.relay.server import CHUNK, Relay

MODES = ("flip", "replay", "cut")
CUT_GRACE_S = 0.005  # from the chunk past N bytes to cutting the caller off: the rest of
# the request it is part of, sent with it, reaches the node first
CUT_WAIT_S = 30.0  # the most the node's side stays open for its answer after a cut


class Cut:
    """One connection's ``cut``: started at the chunk past N bytes; the caller's side is
    closed a moment later, and the node's once the node has answered (into the void)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.answered = asyncio.Event()

    async def caller_off(self, writer: asyncio.StreamWriter) -> None:
        await self.started.wait()
        await asyncio.sleep(CUT_GRACE_S)
        writer.close()


def tampering(modes: str, after: int) -> type[Relay]:
    turns = modes.split(",")
    if not turns or any(m not in MODES for m in turns):
        raise ValueError(f"--tamper: expected modes from {MODES}, got {modes!r}")
    tampered = [0]  # connections tampered with so far

    class Tampering(Relay):
        async def _splice(
            self,
            client_reader: asyncio.StreamReader,
            client_writer: asyncio.StreamWriter,
            node_reader: asyncio.StreamReader,
            node_writer: asyncio.StreamWriter,
        ) -> None:
            cut = Cut()
            cutter = asyncio.create_task(cut.caller_off(client_writer))
            try:
                await asyncio.gather(
                    self._to_node(client_reader, node_writer, cut),
                    self._from_node(node_reader, client_writer, cut),
                )
            finally:
                cutter.cancel()
                for writer in (client_writer, node_writer):
                    writer.close()

        async def _to_node(
            self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: Cut
        ) -> None:
            sent, done = 0, False
            try:
                while data := await reader.read(CHUNK):
                    if not done and sent + len(data) > after:
                        done = True
                        mode = turns[tampered[0] % len(turns)]
                        tampered[0] += 1
                        print(
                            f"faulty_relay: {mode} after {sent} bytes", file=sys.stderr, flush=True
                        )
                        if mode == "flip":
                            at = max(0, after - sent)
                            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
                        elif mode == "replay":
                            writer.write(data)
                        else:
                            cut.started.set()
                    sent += len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if cut.started.is_set():  # the node finishes what it was sent first
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(cut.answered.wait(), CUT_WAIT_S)
                writer.close()

        async def _from_node(
            self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: Cut
        ) -> None:
            try:
                while data := await reader.read(CHUNK):
                    if cut.started.is_set():  # the caller is gone: the answer goes nowhere
                        cut.answered.set()
                        return
                    writer.write(data)
                    await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
            except (ConnectionError, OSError):
                pass
            finally:
                cut.answered.set()

    return Tampering


def faulty_main(argv: Sequence[str]) -> int:
    ours = argparse.ArgumentParser(prog="faulty_relay")
    ours.add_argument(
        "--tamper", required=True, help="flip, replay or cut, or several in turn: flip,cut"
    )
    ours.add_argument("--after-bytes", type=int, default=4096)
    flags, rest = ours.parse_known_args(argv)
    group = program("faulty_relay", "A relay that tampers with what it relays.")
    relay_cli.register(group)
    return run(group, ["relay", *rest], relay_class=tampering(flags.tamper, flags.after_bytes))


if __name__ == "__main__":
    sys.exit(faulty_main(sys.argv[1:]))
