"""The software-item dependency diagram as an SVG picture, for the design record (a PDF cannot
draw Mermaid source). Same nodes and edges as the Mermaid diagram of docs/architecture.md
(`architecture.dependency_nodes` and `dependency_edges`, from the items' `may_use`), laid out
here with the standard library, without network access or a Graphviz install.

Layout (a small Sugiyama layering): each item sits one layer above the deepest item it uses,
users at the top; an arrow spanning several layers passes through a narrow waypoint in each
layer between, so that it runs beside the boxes instead of through them; within a layer boxes
and waypoints are ordered by the mean position of what they lead to (one barycentre pass, ties
by id), which keeps most arrows short.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from xml.sax.saxutils import escape, quoteattr

from digital_contrast.qms.architecture import SYSTEM, Item, dependency_edges, dependency_nodes

BOX_W, BOX_H = 150, 42
WAY_W = 10  # width a waypoint of a long arrow takes in its layer
GAP_X, GAP_Y, MARGIN = 12, 64, 20
NOTE_H = 30


def _layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Layer of each node: 0 for one that uses nothing, else 1 + the deepest it uses. An edge
    closing a circle (reported by `qms check`) is ignored here so that a broken record still
    draws."""
    uses: dict[str, list[str]] = {n: [] for n in nodes}
    for user, used in edges:
        uses[user].append(used)
    layer: dict[str, int] = {}
    on_path: set[str] = set()

    def depth(node: str) -> int:
        if node not in layer:
            on_path.add(node)
            layer[node] = 1 + max((depth(m) for m in uses[node] if m not in on_path),
                                  default=-1)
            on_path.discard(node)
        return layer[node]

    for node in nodes:
        depth(node)
    return layer


def _chains(edges: list[tuple[str, str]], layer: dict[str, int]
            ) -> dict[tuple[str, str], list[str]]:
    """Each edge as the nodes it passes, user first: its waypoints in the layers between."""
    return {(a, b): [a, *(f"{a}>{b}#{k}" for k in range(layer[a] - 1, layer[b], -1)), b]
            if layer[a] > layer[b] + 1 else [a, b] for a, b in edges}


def _rows(layer: dict[str, int], chains: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The rows, bottom (used by the others) first, each ordered by the barycentre of the
    nodes its members lead down to."""
    level = dict(layer)
    down: dict[str, list[str]] = {n: [] for n in layer}
    for chain in chains.values():
        top = level[chain[0]]
        for k, node in enumerate(chain[1:-1], start=1):
            level[node], down[node] = top - k, []
        for upper, lower in pairwise(chain):
            if level[upper] > level[lower]:
                down[upper].append(lower)
    rows: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node in sorted(level):
        rows[level[node]].append(node)
    position: dict[str, float] = {}
    for row in rows:
        centre = {}
        for node in row:
            below = [position[m] for m in down[node] if m in position]
            centre[node] = sum(below) / len(below) if below else float("inf")
        row.sort(key=lambda node: (centre[node], node))
        position.update({n: i / max(len(row) - 1, 1) for i, n in enumerate(row)})
    return rows


def _place(rows: list[list[str]], boxes: set[str]) -> tuple[dict[str, tuple[float, float]],
                                                              float]:
    """Top-left corner of each node (the top row first on the page), and the picture width."""
    def span(row: list[str]) -> float:
        return sum(BOX_W if n in boxes else WAY_W for n in row) + GAP_X * (len(row) - 1)

    width = 2 * MARGIN + max((span(r) for r in rows), default=BOX_W)
    corners: dict[str, tuple[float, float]] = {}
    for k, row in enumerate(reversed(rows)):
        x = (width - span(row)) / 2
        for node in row:
            corners[node] = (x, MARGIN + k * (BOX_H + GAP_Y))
            x += (BOX_W if node in boxes else WAY_W) + GAP_X
    return corners, width


def dependency_svg(items: Sequence[Item]) -> str:
    """The diagram of `items` (the records' or the design's, in the order of
    qms/software_items.yaml) as a standalone SVG document. Each item is a `<g class="node">`
    with its id; each `may_use` edge a `<g class="edge">` with `data-from` and `data-to`; an
    edge naming an unknown item (reported by `qms check`) is left out."""
    labels = dict(dependency_nodes(items))
    edges = [(a, b) for a, b in dependency_edges(items) if a in labels and b in labels]
    layer = _layers(list(labels), edges)
    chains = _chains(edges, layer)
    rows = _rows(layer, chains)
    corners, width = _place(rows, set(labels))
    height = MARGIN * 2 + len(rows) * BOX_H + (len(rows) - 1) * GAP_Y + NOTE_H
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
             f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
             'font-family="sans-serif" font-size="11">',
             "<title>Software items and the items each may use (qms/software_items.yaml)"
             "</title>",
             '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/>'
             "</marker></defs>"]
    parts += _arrows(chains, corners, set(labels))
    for node, label in labels.items():
        x, y = corners[node]
        parts.append(
            f'<g class="node" id={quoteattr(node)}><title>{escape(node)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="4" '
            'fill="#f4f4f4" stroke="#333"/>'
            f'<text x="{x + BOX_W / 2:.1f}" y="{y + 17:.1f}" text-anchor="middle" '
            f'font-weight="bold">{escape(node)}</text>'
            f'<text x="{x + BOX_W / 2:.1f}" y="{y + 32:.1f}" text-anchor="middle">'
            f"{escape(label)}</text></g>")
    parts.append(f'<text x="{MARGIN}" y="{height - MARGIN / 2:.1f}">Every item may also use '
                 f"{SYSTEM} (the shared base); arrows point from the user to the used.</text>")
    return "\n".join([*parts, "</svg>", ""])


def _arrows(chains: dict[tuple[str, str], list[str]], corners: dict[str, tuple[float, float]],
            boxes: set[str]) -> list[str]:
    """Each edge as a polyline from the bottom of the user through its waypoints to the top of
    the used, drawn before the boxes. The ends leaving or reaching one box are spread along its
    side in order of where they lead, so that they can be told apart."""
    def spread(end: int) -> dict[tuple[str, str], float]:
        at: dict[tuple[str, str], float] = {}
        for node in boxes:
            mine = sorted((e for e, c in chains.items() if c[end] == node),
                          key=lambda e: (corners[chains[e][1 if end == 0 else -2]][0], e))
            for i, edge in enumerate(mine):
                at[edge] = corners[node][0] + BOX_W * (0.1 + 0.8 * (i + 0.5) / len(mine))
        return at

    leave, reach = spread(0), spread(-1)
    parts = []
    for (user, used), chain in chains.items():
        points = [(leave[user, used], corners[user][1] + BOX_H)]
        for way in chain[1:-1]:  # through its layer's band, top to bottom
            x, y = corners[way]
            points += [(x + WAY_W / 2, y), (x + WAY_W / 2, y + BOX_H)]
        points.append((reach[user, used], corners[used][1]))
        if corners[used][1] <= corners[user][1]:  # a circle's back edge: top to bottom
            points = [(points[0][0], corners[user][1]), (points[-1][0], corners[used][1] + BOX_H)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<g class="edge" data-from={quoteattr(user)} data-to={quoteattr(used)}>'
                     f"<title>{escape(user)} may use {escape(used)}</title>"
                     f'<polyline points="{path}" fill="none" stroke="#555" '
                     'stroke-opacity="0.7" marker-end="url(#arrow)"/></g>')
    return parts
