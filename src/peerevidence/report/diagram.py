"""The change-model diagram: Graphviz ``dot`` lays it out, we embed the SVG in the report.

Nodes are grouped by kind (intervention, mechanisms with their sub-themes as nested
clusters, process outcomes, downstream outcomes); nodes that are not part of the source
model are marked (dashed border: a peerevidence extension; dotted: added from a later
paper). Each edge is styled by its evidence status (none / qualitative only /
quantitative) and, when known, by the certainty of its quantitative evidence, and links
to its block in the evidence table (``href="#edge-<ID>"``).

We write the DOT source ourselves (every text quoted by :func:`dot_string`), run Debian's
``dot`` through the ``graphviz`` package, and strip everything run-dependent from its SVG
(the XML prolog, comments with the Graphviz version). The result is checked against an
allow-list of SVG elements and attributes before it is embedded: it is the only markup
the templates insert unescaped, together with the forest plots.
"""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from peerevidence.errors import PeerEvidenceError
from peerevidence.records.schema import ChangeModel, Node

KIND_TITLES = {
    "intervention": "Intervention",
    "mechanism": "Mechanisms",
    "process_outcome": "Process outcomes",
    "downstream_outcome": "Downstream outcomes",
}
KIND_FILL = {
    "intervention": "#dbe9f6",
    "mechanism": "#fdf0d5",
    "process_outcome": "#e3f1e0",
    "downstream_outcome": "#efe4f3",
}

# Evidence status and certainty are each shown three ways: line style, a text label on the
# edge (GRADE's symbols) and colour from the Okabe-Ito palette (safe for colour-blind readers).
STATUS_STYLE = {
    "none": {"style": "dotted", "color": "#767676", "penwidth": "1.2"},
    "qualitative_only": {"style": "solid", "color": "#6a51a3", "penwidth": "1.6"},
    "quantitative": {"style": "solid", "color": "#1f1f1f", "penwidth": "2.6"},
}
CERTAINTY_COLOUR = {
    "high": "#0072B2",
    "moderate": "#009E73",
    "low": "#E69F00",
    "very_low": "#D55E00",
}
CERTAINTY_WIDTH = {"high": "4.2", "moderate": "3.4", "low": "3.0", "very_low": "2.8"}
CERTAINTY_STYLE = {"high": "solid", "moderate": "solid", "low": "dashed", "very_low": "dotted"}
CERTAINTY_SYMBOLS = {"high": "⊕⊕⊕⊕", "moderate": "⊕⊕⊕◯", "low": "⊕⊕◯◯", "very_low": "⊕◯◯◯"}
RANKS = {
    "intervention": "min",
    "mechanism": "same",
    "process_outcome": "same",
    "downstream_outcome": "max",
}
STATUS_WORDS = {
    "none": "no evidence beyond the model's own argument",
    "qualitative_only": "qualitative evidence only",
    "quantitative": "quantitative evidence",
}

ALLOWED_TAGS = {
    "svg", "g", "a", "path", "polygon", "polyline", "ellipse", "circle", "rect", "line",
    "text", "tspan", "title", "defs", "clipPath", "use", "style", "desc",
}  # fmt: skip
_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK = "{http://www.w3.org/1999/xlink}"


class DiagramError(PeerEvidenceError):
    pass


def dot_string(text: str) -> str:
    """A DOT double-quoted string showing ``text`` literally (newlines become line breaks)."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r", "").replace("\n", "\\n")
    return f'"{text}"'


def _attrs(**attrs: str) -> str:
    return "[" + ", ".join(f"{k}={dot_string(str(v))}" for k, v in attrs.items()) + "]"


def _wrap(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(" ".join(text.split()), width)) or " "


@dataclass(frozen=True)
class EdgeStyle:
    status: str  # none | qualitative_only | quantitative
    rating: str | None = None  # certainty of the quantitative evidence, if rated

    def dot(self) -> dict[str, str]:
        style = dict(STATUS_STYLE.get(self.status, STATUS_STYLE["none"]))
        if self.status == "quantitative" and self.rating in CERTAINTY_COLOUR:
            style["color"] = CERTAINTY_COLOUR[self.rating]
            style["penwidth"] = CERTAINTY_WIDTH[self.rating]
            style["style"] = CERTAINTY_STYLE[self.rating]
        return style

    def label(self, edge_id: str) -> str:
        """The edge's text label: its id, and GRADE's symbols when its certainty is rated."""
        if self.status == "quantitative" and self.rating in CERTAINTY_SYMBOLS:
            return f"{edge_id} {CERTAINTY_SYMBOLS[self.rating]}"
        return edge_id

    def describe(self) -> str:
        words = STATUS_WORDS.get(self.status, self.status)
        if self.status == "quantitative":
            words += (
                f"; certainty {self.rating.replace('_', ' ')}" if self.rating else "; certainty not rated"
            )
        return words


def node_marker(node: Node, model_source: str | None) -> str | None:
    """'extension' for our own nodes, 'later' for nodes taken from a later paper, else None."""
    if node.model_source == "peerevidence":
        return "extension"
    if node.model_source != model_source:
        return "later"
    return None


def _node_line(node: Node, model_source: str | None, source_names: Mapping[str, str]) -> str:
    label = _wrap(node.label)
    marker = node_marker(node, model_source)
    attrs = {
        "id": f"cm-node-{node.id}",
        "label": label,
        "fillcolor": KIND_FILL.get(node.kind, "#ffffff"),
        "tooltip": node.label,
    }
    if marker == "extension":
        attrs["label"] = label + "\n[extension: ours]"
        attrs["style"] = "rounded,filled,dashed"
        attrs["penwidth"] = "1.6"
    elif marker == "later":
        attrs["label"] = label + f"\n[from {source_names.get(node.model_source, node.model_source)}]"
        attrs["style"] = "rounded,filled,dotted"
        attrs["penwidth"] = "1.8"
    if node.parent is None and node.kind == "mechanism":
        attrs["fontname"] = "Helvetica-Bold"
    return f"  {dot_string(node.id)} {_attrs(**attrs)};"


def dot_source(
    model: ChangeModel,
    styles: Mapping[str, EdgeStyle],
    source_names: Mapping[str, str] | None = None,
) -> str:
    """The DOT text of the diagram (deterministic: nodes and edges in file order)."""
    source_names = source_names or {}
    origin = model.meta.source
    lines = [
        "digraph change_model {",
        '  graph [rankdir="LR", newrank="true", nodesep="0.18", ranksep="1.1", fontname="Helvetica",'
        ' fontsize="13", bgcolor="transparent", pad="0.1"];',
        '  node [shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11",'
        ' margin="0.08,0.04", color="#555555", penwidth="1.0"];',
        '  edge [fontname="Helvetica", fontsize="10", arrowsize="0.7"];',
    ]
    children: dict[str, list[Node]] = {}
    for node in model.nodes:
        if node.parent:
            children.setdefault(node.parent, []).append(node)
    ids = {n.id for n in model.nodes}
    for kind, title in KIND_TITLES.items():
        members = [n for n in model.nodes if n.kind == kind and not (n.parent and n.parent in ids)]
        if not members:
            continue
        lines.append(f"  subgraph {dot_string('cluster_' + kind)} {{")
        lines.append(
            f"    graph {_attrs(id='cm-' + kind, label=title, style='rounded', color='#bbbbbb', fontcolor='#333333')};"
        )
        for node in members:
            kids = children.get(node.id, [])
            if kids:
                lines.append(f"    subgraph {dot_string('cluster_sub_' + node.id)} {{")
                lines.append(
                    f"      graph {_attrs(id='cm-theme-' + node.id, label='', style='rounded,dashed', color='#d9b77a', margin='6')};"
                )
                lines.append("    " + _node_line(node, origin, source_names))
                for kid in kids:
                    lines.append("    " + _node_line(kid, origin, source_names))
                lines.append("    }")
            else:
                lines.append("  " + _node_line(node, origin, source_names))
        lines.append("  }")
    # One column per kind, left to right: the layout reads in the model's causal order.
    for kind, rank in RANKS.items():
        same = " ".join(dot_string(n.id) for n in model.nodes if n.kind == kind)
        if same:
            lines.append(f"  {{rank={dot_string(rank)}; {same}}}")
    for edge in model.edges:
        style = styles.get(edge.id, EdgeStyle("none"))
        attrs = {
            "id": f"cm-edge-{edge.id}",
            "label": style.label(edge.id),
            "URL": f"#edge-{edge.id}",
            "target": "_self",
            "tooltip": f"{edge.id}: {style.describe()} (click for the evidence)",
            "fontcolor": "#1f1f1f",
            **style.dot(),
        }
        lines.append(f"  {dot_string(edge.from_)} -> {dot_string(edge.to)} {_attrs(**attrs)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_PROLOG = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->", re.S)


def clean_svg(svg: str) -> str:
    """Strip the prolog, doctype and comments; turn ``xlink:href`` into ``href``; check it."""
    svg = _PROLOG.sub("", svg)
    svg = svg.replace("xlink:href=", "href=")
    svg = "\n".join(line.rstrip() for line in svg.strip().splitlines() if line.strip()) + "\n"
    check_svg(svg)
    return svg


def check_svg(svg: str) -> None:
    """Refuse SVG with elements or attributes outside what our generators emit.

    Defence in depth for the only markup the templates embed unescaped: no scripts,
    no foreign objects, no event handlers, and links (``href``) only to fragments of this
    page. Only URLs are checked as URLs: text (labels, tooltips) is escaped XML and may say
    anything, ``javascript:`` included. A refusal names the node or edge it is in.
    """
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as exc:
        raise DiagramError(f"generated SVG is not well-formed XML ({exc})") from None
    _check_element(root, "")


def _where(owner: str) -> str:
    for prefix, what in (("cm-node-", "node"), ("cm-edge-", "edge"), ("cm-theme-", "node")):
        if owner.startswith(prefix):
            return f" (in {what} '{owner.removeprefix(prefix)}')"
    return f" (in '{owner}')" if owner else ""


_URL_ATTRS = {"href", "src"}


def _check_element(el: ET.Element, owner: str) -> None:
    owner = el.get("id", owner) if str(el.get("id", "")).startswith("cm-") else owner
    tag = el.tag.replace(_SVG_NS, "")
    if tag not in ALLOWED_TAGS:
        raise DiagramError(f"generated SVG contains a <{tag}> element{_where(owner)}; refusing to embed it")
    for name, value in el.attrib.items():
        local = name.replace(_XLINK, "").lower()
        if local.startswith("on"):
            raise DiagramError(f"generated SVG has an event-handler attribute {name!r}{_where(owner)}")
        if local in _URL_ATTRS and not re.fullmatch(r"#[\w.:-]*", value.strip()):
            raise DiagramError(f"generated SVG links outside the page ({value[:40]!r}){_where(owner)}")
        if "url(" in value.lower() and not re.search(r"url\(\s*#", value.lower()) and local == "style":
            raise DiagramError(f"generated SVG style refers to a URL ({value[:40]!r}){_where(owner)}")
    for child in el:
        _check_element(child, owner)


def render_svg(dot: str) -> str:
    """Run ``dot -Tsvg`` on the source; a clear one-line error if Graphviz is missing."""
    import graphviz

    try:
        raw = graphviz.pipe("dot", "svg", dot.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise DiagramError(
            "Graphviz's `dot` was not found on PATH; install it with `apt-get install graphviz` "
            "(or run `make run`, which does)"
        ) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise DiagramError(
            f"Graphviz failed to lay out the change model: {detail[-1] if detail else exc}"
        ) from None
    return clean_svg(raw.decode("utf-8"))


def change_model_svg(
    model: ChangeModel, styles: Mapping[str, EdgeStyle], source_names: Mapping[str, str] | None = None
) -> str:
    """The laid-out, cleaned SVG of the change model; each edge's ``<title>`` (read by screen
    readers and shown on hover) says what the link is and what evidence it has."""
    from html import escape

    svg = render_svg(dot_source(model, styles, source_names))
    labels = {n.id: n.label for n in model.nodes}
    for edge in model.edges:
        style = styles.get(edge.id, EdgeStyle("none"))
        title = f"{edge.id}: {labels.get(edge.from_, edge.from_)} → {labels.get(edge.to, edge.to)}; {style.describe()}"

        def titled(m: re.Match[str], t: str = title) -> str:
            return m.group(1) + escape(t, quote=False) + m.group(2)

        svg = re.sub(
            # Graphviz writes the hyphens of ids as &#45;
            rf'(<g id="cm(?:-|&#45;)edge(?:-|&#45;){re.escape(edge.id).replace("-", "(?:-|&#45;)")}" class="edge">\s*<title>)[^<]*(</title>)',
            titled,
            svg,
            count=1,
        )
    return svg
