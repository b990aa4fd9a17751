"""A relay that tampers with what it carries, as a real process:

    python -m sharedllm.testing.faulty_relay --tamper MODE[,MODE...] [--after-bytes N] ARGS...

After ``N`` bytes towards a node on one connection (default 4096: past the TLS handshake and
into the requests), ``flip`` inverts one byte and ``replay`` sends the last chunk twice;
with several modes, each connection that gets that far takes the next one in turn. ARGS are
those of ``sharedllm relay``. End-to-end TLS must turn either into a broken link,
never into an altered or repeated request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from sharedllm.relay import cli as relay_cli
from sharedllm.relay.server import CHUNK, Relay

MODES = ("flip", "replay")


def tampering(modes: str, after: int) -> type[Relay]:
    turns = modes.split(",")
    if not turns or any(m not in MODES for m in turns):
        raise ValueError(f"--tamper: expected modes from {MODES}, got {modes!r}")
    tampered = [0]  # connections tampered with so far

    class Tampering(Relay):
        async def _copy(
            self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_node: bool
        ) -> None:
            if not to_node:
                return await super()._copy(reader, writer, to_node=to_node)
            sent, done = 0, False
            try:
                while data := await reader.read(CHUNK):
                    if not done and sent + len(data) > after:
                        done = True
                        mode = turns[tampered[0] % len(turns)]
                        tampered[0] += 1
                        if mode == "flip":
                            at = max(0, after - sent)
                            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
                        else:
                            writer.write(data)
                    sent += len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

    return Tampering


def faulty_main(argv: Sequence[str]) -> int:
    ours = argparse.ArgumentParser(prog="faulty_relay")
    ours.add_argument("--tamper", required=True, help="flip, replay, or both: flip,replay")
    ours.add_argument("--after-bytes", type=int, default=4096)
    flags, rest = ours.parse_known_args(argv)
    parser = argparse.ArgumentParser(prog="faulty_relay")
    relay_cli.register(parser.add_subparsers())
    args = parser.parse_args(["relay", *rest])
    args.relay_class = tampering(flags.tamper, flags.after_bytes)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(faulty_main(sys.argv[1:]))
