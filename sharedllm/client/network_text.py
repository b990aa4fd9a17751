"""``sharedllm nodes`` for a terminal: a node table, then one strip per model, a column a layer.

    model 0x5e5e…5e5e: 30 layers
                   0         10        20
      0x7099…79C8  ##########....................  0:10
      0x3C44…93BC  ..........xxxxxxxxxx..........  10:20  down
      registered   11111111111111111111..........
      answering    1111111111....................
      gaps: 20:30 (no route covers the model)

``#`` a layer the node serves and answers for, ``x`` one it is registered for but does not
serve right now, ``.`` elsewhere; in the counts ``.`` is nobody and above 9 shows as ``+``.
"""

from __future__ import annotations

from sharedllm.chain.amounts import format_share
from sharedllm.client.network_view import ModelCoverage, NetworkView, NodeRow
from sharedllm.placement.registry_gaps import gaps

LABEL = 13


def network_lines(view: NetworkView) -> list[str]:
    if not view.rows:
        return [f"no active nodes in the registry {view.registry} (chain {view.chain_id})"]
    lines = [
        f"{len(view.rows)} active node(s) in the registry {view.registry} (chain {view.chain_id})",
        "",
        *_table(view),
    ]
    for model in view.models:
        lines += ["", *_strip(model)]
    return lines


def _table(view: NetworkView) -> list[str]:
    header = (
        "ADDRESS", "ENDPOINT", "SPAN", "HARDWARE", "PRICE/TOKEN/LAYER", "STAKE", "STATUS", "INFO"
    )  # fmt: skip
    rows = [header]
    for row in view.rows:
        r = row.record
        rows.append(
            (
                r.address,
                r.endpoint,
                f"{r.start}:{r.end}",
                r.hardware or "-",
                f"{format_share(r.price_per_token)} SHARE",
                f"{format_share(r.stake)} SHARE",
                r.status,
                _info(row, view.probed),
            )
        )
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in rows]
    problems = [(row.record.address, row.problem) for row in view.rows if row.problem]
    lines += [f"  ! {address}: {problem}" for address, problem in problems]
    return [line.rstrip() for line in lines]


def _info(row: NodeRow, probed: bool) -> str:
    if not probed:
        return "not probed"
    if row.candidate is None:
        return "down"
    answer = f"ok {row.candidate.rtt_ms:.0f} ms"
    if row.moving_to is not None:
        answer += (
            f", moving {row.record.start}:{row.record.end} -> {row.moving_to[0]}:{row.moving_to[1]}"
        )
    return answer if row.problem is None else answer.replace("ok", "differs")


def _strip(model: ModelCoverage) -> list[str]:
    n = model.num_layers
    count = f"{n} layers"
    if model.layers_from == "registry":
        count = f"at least {n} layers (the highest registered span end; pass --layers)"
    lines = [f"model {_short(model.model_id, 6)}: {count}", " " * (LABEL + 2) + _scale(n)]
    for row in sorted(model.rows, key=lambda r: (r.record.start, r.record.end)):
        r = row.record
        live = model.answering is None or (row.answers and row.problem is None)
        mark = "#" if live else "x"
        bar = "".join(mark if r.start <= layer < r.end else "." for layer in range(n))
        tail = f"  {r.start}:{r.end}"
        if not live:
            tail += "  differs" if row.answers else "  down"
        lines.append(f"  {_short(r.address, 4):<{LABEL}}{bar}{tail}")
    lines.append(f"  {'registered':<{LABEL}}{_counts(model.coverage)}")
    if model.answering is not None:
        lines.append(f"  {'answering':<{LABEL}}{_counts(model.answering)}")
    lines.append("  " + _gap_note(model))
    return lines


def _gap_note(model: ModelCoverage) -> str:
    if model.gaps:
        spans = ", ".join(f"{s}:{e}" for s, e in model.gaps)
        return f"gaps: {spans} (no route covers the model)"
    if model.answering is not None and 0 in model.answering:
        spans = ", ".join(f"{s}:{e}" for s, e in gaps(model.answering))
        return f"every layer is registered; nobody answering serves {spans}"
    return "every layer is covered"


def _scale(n: int) -> str:
    """Layer numbers every ten columns, each printed where its layer's column is."""
    text = [" "] * n
    for layer in range(0, n, 10):
        label = str(layer)
        if layer + len(label) <= n:
            text[layer : layer + len(label)] = label
    return "".join(text).rstrip()


def _counts(coverage: list[int]) -> str:
    return "".join("." if c == 0 else str(c) if c < 10 else "+" for c in coverage)


def _short(hex_text: str, keep: int) -> str:
    return f"{hex_text[: 2 + keep]}…{hex_text[-keep:]}"
