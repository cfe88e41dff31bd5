"""Path diagrams of mediation models with the estimates on the arrows (matplotlib, Agg).

A diagram is described as data: boxes (:class:`Node`) at positions in inches, and arrows
(:class:`Path`) between them, each with a symbol, a posterior estimate and an interval.
:func:`draw_path_diagram` draws any such description: every arrow carries its text
(``"a = 0.31 [0.12, 0.50]"``, two decimals), set beside the arrow on a white ground so that
it never sits on a line; an arrow whose interval excludes 0 is solid, one whose interval
includes 0 (or has no interval) is dashed and grey. Lines of notes (the indirect effect, the
proportion mediated, what solid and dashed mean) go under the diagram.

The ready-made layouts of the mediation designs are in :mod:`bayes_alliance.report.path_layouts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # headless: diagrams are written to files, never shown

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath
from matplotlib.text import Text
from matplotlib.transforms import Bbox

__all__ = [
    "Node",
    "Path",
    "diagram_extent",
    "draw_path_diagram",
    "estimate_text",
    "excludes_zero",
    "number_text",
]

SOLID = "#08306b"
DASHED = "#7f7f7f"
FONT = 9.0
LINE = FONT / 72 * 1.45  # one line of text, in inches


@dataclass(frozen=True)
class Node:
    """A box of the diagram.

    Parameters
    ----------
    key
        The name paths refer to.
    label
        Text in the box (``"\\n"`` breaks lines).
    xy
        Centre of the box, in inches from an arbitrary origin (the axes are scaled 1:1).
    width, height
        Size of the box in inches.
    """

    key: str
    label: str
    xy: tuple[float, float]
    width: float = 1.9
    height: float = 0.75


@dataclass(frozen=True)
class Path:
    """An arrow from one node to another, with its estimate.

    Parameters
    ----------
    source, target
        Node keys.
    label
        The path's symbol (``"a"``, ``"c'"``) or a short name; the arrow's text is
        ``"<label> = <estimate> [<low>, <high>]"``.
    estimate, low, high
        Posterior estimate and interval bounds (NaN: not available; the arrow is dashed and
        its text names the symbol only).
    side
        Where the text goes, seen along the arrow: ``"left"`` or ``"right"`` of it.
    at
        Where along the visible arrow the text is anchored (0: at the source's box, 1: at
        the target's).
    offset
        Gap between the arrow and its text, in inches.
    bend
        Curvature (matplotlib's ``arc3`` ``rad``, a fraction of the distance between the
        centres): 0 is straight; a positive value bulges to the right of the arrow's
        direction, a negative one to its left.
    both_ends
        A double-headed arrow (a correlation or covariance).
    """

    source: str
    target: str
    label: str
    estimate: float
    low: float = math.nan
    high: float = math.nan
    side: Literal["left", "right"] = "left"
    at: float = 0.5
    offset: float = 0.08
    bend: float = 0.0
    both_ends: bool = False


def excludes_zero(low: float, high: float) -> bool:
    """Whether an interval lies wholly on one side of 0 (NaN bounds: no)."""
    return bool((low > 0 and high > 0) or (low < 0 and high < 0))


def number_text(value: float) -> str:
    """Two decimals; a negative zero prints as 0.00."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def estimate_text(label: str, estimate: float, low: float, high: float) -> str:
    """``"a = 0.31 [0.12, 0.50]"``; without a finite estimate the label alone, without
    finite bounds no interval."""
    if not math.isfinite(estimate):
        return label
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{label} = {number_text(estimate)}"
    return f"{label} = {number_text(estimate)} [{number_text(low)}, {number_text(high)}]"


def _clip(centre: np.ndarray, towards: np.ndarray, node: Node, pad: float = 0.04) -> np.ndarray:
    """Where the straight line from a box's centre towards a point leaves the box."""
    d = towards - centre
    hw, hh = node.width / 2 + pad, node.height / 2 + pad
    scale = min(hw / abs(d[0]) if d[0] else np.inf, hh / abs(d[1]) if d[1] else np.inf)
    return centre + d * min(scale, 1.0)


def _arc_point(p0: np.ndarray, p1: np.ndarray, bend: float, t: float) -> tuple[np.ndarray, ...]:
    """A point of matplotlib's ``arc3`` curve from p0 to p1 (a quadratic Bezier whose control
    point is the chord's midpoint moved by ``bend`` times the chord, turned clockwise) and
    the curve's direction there."""
    d = p1 - p0
    control = (p0 + p1) / 2 + bend * np.array([d[1], -d[0]])
    point = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p1
    tangent = 2 * (1 - t) * (control - p0) + 2 * t * (p1 - control)
    return point, tangent


def _text_anchor(normal: np.ndarray) -> tuple[str, str]:
    """Alignment that puts a text on the side of its anchor the normal points to."""
    ha = "left" if normal[0] > 0.35 else "right" if normal[0] < -0.35 else "center"
    va = "bottom" if normal[1] > 0.35 else "top" if normal[1] < -0.35 else "center"
    return ha, va


def _arrow_line(p: Path, src: Node, dst: Node) -> np.ndarray:
    """Points along the visible part of an arrow (outside both boxes), shape (k, 2)."""
    c0, c1 = np.asarray(src.xy, float), np.asarray(dst.xy, float)
    if not p.bend:
        return np.array([_clip(c0, c1, src), _clip(c1, c0, dst)])
    pts = np.array([_arc_point(c0, c1, p.bend, t)[0] for t in np.linspace(0, 1, 41)])
    inside = np.zeros(len(pts), dtype=bool)
    for n in (src, dst):
        inside |= (np.abs(pts[:, 0] - n.xy[0]) <= n.width / 2) & (
            np.abs(pts[:, 1] - n.xy[1]) <= n.height / 2
        )
    return pts[~inside]


def text_box(text: Text, ax: Axes, gap: float = 0.0) -> Bbox:
    """A text's extent in data coordinates, widened by ``gap`` (its white ground is about
    0.02 inch wider than the letters)."""
    renderer = ax.get_figure().canvas.get_renderer()  # type: ignore[union-attr]
    box = text.get_window_extent(renderer)
    lo, hi = ax.transData.inverted().transform([[box.x0, box.y0], [box.x1, box.y1]])
    return Bbox([lo - gap, hi + gap])


def _clear_of_line(
    text: Text, line: np.ndarray, normal: np.ndarray, ax: Axes, step: float = 0.03
) -> None:
    """Move a text along ``normal`` until it no longer touches the polyline ``line`` (a long
    text beside a shallow arrow would otherwise lie across it)."""
    ax.apply_aspect()
    track = MplPath(line)
    for _ in range(60):
        if not track.intersects_bbox(text_box(text, ax, gap=0.03), filled=False):
            return
        x, y = text.get_position()
        text.set_position((x + step * normal[0], y + step * normal[1]))


def diagram_extent(
    nodes: Sequence[Node], title: str | None, notes: Sequence[str], margin: float
) -> tuple[float, float, float, float]:
    """The drawing's limits (x0, x1, y0, y1) in inches: the boxes with a margin, a title line
    above and the notes below."""
    xs = [v for n in nodes for v in (n.xy[0] - n.width / 2, n.xy[0] + n.width / 2)]
    ys = [v for n in nodes for v in (n.xy[1] - n.height / 2, n.xy[1] + n.height / 2)]
    y0 = min(ys) - margin - len(notes) * LINE - (0.1 if notes else 0.0)
    y1 = max(ys) + margin + (1.6 * LINE if title else 0.0)
    return min(xs) - margin, max(xs) + margin, y0, y1


def draw_path_diagram(
    nodes: Sequence[Node],
    paths: Sequence[Path],
    title: str | None = None,
    ax: Axes | None = None,
    notes: Sequence[str] = (),
    margin: float = 0.35,
) -> Figure:
    """Draw boxes, arrows and each arrow's estimate with its interval.

    Parameters
    ----------
    nodes
        The boxes; positions and sizes in inches.
    paths
        The arrows. Solid where the interval excludes 0, dashed and grey otherwise.
    title
        Drawn above the diagram.
    ax
        Axes to draw into (its limits and aspect are set here); default a new figure sized
        to the diagram, one inch per unit.
    notes
        Lines under the diagram: the derived effects and what the line styles mean (the
        interval's level belongs here, e.g. ``"posterior mean [95% HDI]"``).
    margin
        Space around the boxes, in inches, for texts beside the outer arrows.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (the one ``ax`` belongs to, when given).
    """
    by_key = _nodes_by_key(nodes, paths)
    extent = diagram_extent(nodes, title, notes, margin)
    fig, ax = _diagram_axes(ax, extent)
    boxes = _draw_boxes(ax, nodes)
    for p in paths:
        _draw_path(ax, p, by_key[p.source], by_key[p.target], boxes)
    bottom = min(n.xy[1] - n.height / 2 for n in nodes) - margin
    _draw_title_and_notes(ax, extent, title, notes, bottom)
    return fig


def _nodes_by_key(nodes: Sequence[Node], paths: Sequence[Path]) -> dict[str, Node]:
    """The nodes by key; a path naming an unknown node is a KeyError."""
    by_key = {n.key: n for n in nodes}
    for p in paths:
        missing = {p.source, p.target} - set(by_key)
        if missing:
            raise KeyError(f"path {p.label!r} names unknown node(s) {sorted(missing)}")
    return by_key


def _diagram_axes(
    ax: Axes | None, extent: tuple[float, float, float, float]
) -> tuple[Figure, Axes]:
    """The figure and axes drawn into: ``ax`` or a new figure, limited to ``extent`` at 1:1."""
    x0, x1, y0, y1 = extent
    if ax is None:
        fig = plt.figure(figsize=(x1 - x0, y1 - y0))
        ax = fig.add_axes((0, 0, 1, 1))
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _draw_boxes(ax: Axes, nodes: Sequence[Node]) -> dict[str, FancyBboxPatch]:
    """Draws each node's box and label; returns the boxes by key (arrows end at their edges)."""
    boxes = {}
    for n in nodes:
        box = FancyBboxPatch(
            (n.xy[0] - n.width / 2, n.xy[1] - n.height / 2),
            n.width,
            n.height,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor="#f0f4f8",
            edgecolor="#333333",
            lw=1.1,
            zorder=2,
        )
        ax.add_patch(box)
        boxes[n.key] = box
        ax.text(*n.xy, n.label, ha="center", va="center", fontsize=FONT, zorder=3)
    return boxes


def _draw_path(ax: Axes, p: Path, src: Node, dst: Node, boxes: dict[str, FancyBboxPatch]) -> Text:
    """Draws one arrow (solid or dashed by its interval) and its text; returns the text."""
    c0, c1 = np.asarray(src.xy, float), np.asarray(dst.xy, float)
    solid = excludes_zero(p.low, p.high)
    colour = SOLID if solid else DASHED
    arrow = FancyArrowPatch(
        tuple(c0),
        tuple(c1),
        patchA=boxes[p.source],
        patchB=boxes[p.target],
        shrinkA=3,
        shrinkB=3,
        arrowstyle="<|-|>" if p.both_ends else "-|>",
        mutation_scale=12,
        connectionstyle=f"arc3,rad={p.bend}",
        linestyle="-" if solid else (0, (5, 3)),
        color=colour,
        lw=1.6 if solid else 1.3,
        zorder=1,
    )
    ax.add_patch(arrow)
    line = _arrow_line(p, src, dst)
    anchor, normal = _text_place(p, c0, c1, line)
    ha, va = _text_anchor(normal)
    text = ax.text(
        float(anchor[0]),
        float(anchor[1]),
        estimate_text(p.label, p.estimate, p.low, p.high),
        ha=ha,
        va=va,
        fontsize=FONT,
        color=colour if not solid else "#111111",
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
        zorder=4,
    )
    _clear_of_line(text, line, normal, ax)
    return text


def _text_place(
    p: Path, c0: np.ndarray, c1: np.ndarray, line: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """An arrow's text anchor (``p.offset`` beside the arrow) and the unit normal to its side."""
    if p.bend:
        point, tangent = _arc_point(c0, c1, p.bend, p.at)
    else:
        point, tangent = line[0] + p.at * (line[-1] - line[0]), line[-1] - line[0]
    unit = tangent / max(float(np.hypot(*tangent)), 1e-12)
    normal = np.array([-unit[1], unit[0]]) * (1 if p.side == "left" else -1)
    return point + p.offset * normal, normal


def _draw_title_and_notes(
    ax: Axes,
    extent: tuple[float, float, float, float],
    title: str | None,
    notes: Sequence[str],
    bottom: float,
) -> None:
    """Draws the title at the top of ``extent`` and the notes downwards from ``bottom``."""
    x0, x1, _, y1 = extent
    if title:
        ax.text((x0 + x1) / 2, y1 - 0.2 * LINE, title, ha="center", va="top", fontsize=FONT + 1.5)
    for k, note in enumerate(notes):
        ax.text(
            x0 + 0.1,
            bottom - k * LINE,
            note,
            ha="left",
            va="top",
            fontsize=FONT - 0.5,
            color="#333333",
        )
