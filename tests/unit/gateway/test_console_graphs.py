"""The console's graphs (llmops_gateway.console.graphs): the layered layout, the escaping of
everything that came from data, links only to safe URLs, a pipeline's stages read from the
Argo manifest and matched with the nodes the worker reported, and SVG that parses as XML.
Behaviour is asserted on the parsed SVG, never on whole strings."""

from __future__ import annotations

import copy
import itertools
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from markupsafe import Markup

from llmops_gateway.console.graphs import (
    Stage,
    css_token,
    lineage_svg,
    pipeline_stages,
    pipeline_svg,
    safe_href,
)
from llmops_gateway.console.layout import layers, place
from llmops_gateway.domain.lineage import Edge, Lineage, Node

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"
WORKFLOW = "train-3f9a2c1e"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def groups(svg: str, attribute: str) -> dict[str, ET.Element]:
    """The node groups of a graph by their ``data-key`` / ``data-stage``."""
    return {g.attrib[attribute]: g for g in parse(svg).iter(f"{SVG}g") if attribute in g.attrib}


def rect(group: ET.Element) -> tuple[float, float, float, float]:
    box = next(group.iter(f"{SVG}rect")).attrib
    return (float(box["x"]), float(box["y"]), float(box["width"]), float(box["height"]))


def node(kind: Any, ident: str, label: str | None = None, status: str | None = "Succeeded") -> Node:
    return Node(kind, ident, label or ident, status)


def chain_lineage() -> Lineage:
    nodes = [
        node("dataset-version", "dv1", "chat@v1.0.0"),
        node("training-job", "job1", "sft-lora (3f9a2c1e)", "Running"),
        node("model-version", "m/1", "m v1", "Registered"),
        node("endpoint", "ep1", "chat (prod)"),
    ]
    edges = [
        Edge("dataset-version:dv1", "training-job:job1", "trained"),
        Edge("training-job:job1", "model-version:m/1", "registered"),
        Edge("model-version:m/1", "endpoint:ep1", "serves"),
    ]
    return Lineage("training-job:job1", nodes, edges)


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


# --- layout ----------------------------------------------------------------------------------


def test_a_chain_goes_left_to_right() -> None:
    found = groups(lineage_svg(chain_lineage()), "data-key")
    xs = [rect(found[key])[0] for key in [n.key for n in chain_lineage().nodes]]
    assert xs == sorted(xs)
    assert len(set(xs)) == len(xs)


def test_a_node_sits_right_of_all_its_predecessors() -> None:
    # c has a direct predecessor (a) and a longer way in (a -> b -> c): it goes after b.
    nodes = [node("pipeline", name) for name in ("a", "b", "c")]
    edges = [
        Edge("pipeline:a", "pipeline:c", "x"),
        Edge("pipeline:a", "pipeline:b", "x"),
        Edge("pipeline:b", "pipeline:c", "x"),
    ]
    found = groups(lineage_svg(Lineage("pipeline:a", nodes, edges)), "data-key")
    a, b, c = (rect(found[f"pipeline:{name}"]) for name in "abc")
    assert c[0] > b[0] > a[0]
    assert c[0] >= b[0] + b[2]


def test_boxes_never_overlap_and_fit_the_viewbox() -> None:
    # A dataset version that trained several jobs, each registering a version, some served.
    nodes = [node("dataset-version", "dv")]
    edges = []
    for index in range(5):
        nodes += [node("training-job", f"j{index}"), node("model-version", f"m/{index}")]
        edges += [
            Edge("dataset-version:dv", f"training-job:j{index}", "trained"),
            Edge(f"training-job:j{index}", f"model-version:m/{index}", "registered"),
        ]
        if index % 2:
            nodes.append(node("endpoint", f"e{index}"))
            edges.append(Edge(f"model-version:m/{index}", f"endpoint:e{index}", "serves"))
    svg = lineage_svg(Lineage("dataset-version:dv", nodes, edges))
    boxes = [rect(g) for g in groups(svg, "data-key").values()]
    assert len(boxes) == len(nodes)
    for one, other in itertools.combinations(boxes, 2):
        assert not overlap(one, other), (one, other)
    _, _, width, height = (float(v) for v in parse(svg).attrib["viewBox"].split())
    for x, y, w, h in boxes:
        assert 0 <= x <= x + w <= width
        assert 0 <= y <= y + h <= height


def test_crossings_are_reduced_by_the_predecessors_order() -> None:
    # Sources a, b; a's child listed after b's: the children follow their parents' order.
    columns = layers(
        ["a", "b", "child-of-b", "child-of-a"], [("a", "child-of-a"), ("b", "child-of-b")]
    )
    assert columns == [["a", "b"], ["child-of-a", "child-of-b"]]


@pytest.mark.timeout(10)
def test_a_cycle_terminates_and_keeps_every_node() -> None:
    columns = layers(
        ["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d")]
    )
    assert sorted(itertools.chain.from_iterable(columns)) == ["a", "b", "c", "d"]
    nodes = [node("pipeline", name) for name in "abc"]
    edges = [Edge("pipeline:a", "pipeline:b", "x"), Edge("pipeline:b", "pipeline:c", "x")]
    edges += [Edge("pipeline:c", "pipeline:a", "x"), Edge("pipeline:a", "pipeline:a", "self")]
    svg = lineage_svg(Lineage("pipeline:a", nodes, edges))
    assert set(groups(svg, "data-key")) == {"pipeline:a", "pipeline:b", "pipeline:c"}


@pytest.mark.timeout(10)
def test_a_long_chain_and_a_wide_fan_out_are_laid_out() -> None:
    chain = [str(i) for i in range(3000)]
    columns = layers(chain, list(itertools.pairwise(chain)))
    assert [column[0] for column in columns] == chain
    wide = place(layers(["root", *chain], [("root", key) for key in chain]))
    assert len(wide.boxes) == 3001


def test_empty_layout() -> None:
    assert layers([], []) == []
    assert place([]).boxes == {}


# --- lineage SVG -----------------------------------------------------------------------------


def test_lineage_svg_is_markup_with_its_accessibility_attributes() -> None:
    svg = lineage_svg(chain_lineage())
    assert isinstance(svg, Markup)
    root = parse(svg)
    assert root.attrib["role"] == "img"
    assert "sft-lora" in root.attrib["aria-label"]
    assert root.attrib["viewBox"].startswith("0 0 ")
    assert root.find(f"{SVG}defs/{SVG}marker") is not None


def test_nodes_show_kind_label_status_and_the_root_is_marked() -> None:
    found = groups(lineage_svg(chain_lineage()), "data-key")
    job = found["training-job:job1"]
    assert "root" in job.attrib["class"].split()
    assert "status-running" in job.attrib["class"].split()
    texts = {t.attrib["class"]: t.text for t in job.iter(f"{SVG}text")}
    assert texts == {"kind": "training-job", "label": "sft-lora (3f9a2c1e)", "status": "Running"}
    others = [g for key, g in found.items() if key != "training-job:job1"]
    assert all("root" not in g.attrib["class"].split() for g in others)


def test_edges_carry_an_arrow_and_the_relation() -> None:
    edges = [
        p
        for p in parse(lineage_svg(chain_lineage())).iter(f"{SVG}path")
        if "data-source" in p.attrib
    ]
    assert len(edges) == 3
    relations = {
        (p.attrib["data-source"], p.attrib["data-target"]): p.find(f"{SVG}title") for p in edges
    }
    title = relations[("training-job:job1", "model-version:m/1")]
    assert title is not None
    assert title.text == "registered"
    assert all(p.attrib["marker-end"].startswith("url(#") for p in edges)


def test_a_long_label_is_truncated_with_its_full_text_in_the_title() -> None:
    label = "a-very-long-artifact-name-for-a-model (3f9a2c1e)"
    graph = Lineage("training-job:j", [node("training-job", "j", label)], [])
    group = groups(lineage_svg(graph), "data-key")["training-job:j"]
    shown = next(t.text for t in group.iter(f"{SVG}text") if t.attrib["class"] == "label")
    assert shown is not None
    assert shown.endswith("\u2026")
    assert len(shown) < len(label)
    title = group.find(f"{SVG}title")
    assert title is not None
    assert label in (title.text or "")


def test_hrefs_for_nodes_with_a_safe_url_only() -> None:
    urls = {
        "dataset-version:dv1": "/console/dataset-versions/dv1",
        "training-job:job1": "https://mlflow.example.com/#/runs/1",
        "model-version:m/1": "javascript:alert(1)",
    }
    svg = lineage_svg(chain_lineage(), lambda n: urls.get(n.key))
    found = groups(svg, "data-key")
    links = {key: [a.attrib["href"] for a in g.iter(f"{SVG}a")] for key, g in found.items()}
    assert links == {
        "dataset-version:dv1": ["/console/dataset-versions/dv1"],
        "training-job:job1": ["https://mlflow.example.com/#/runs/1"],
        "model-version:m/1": [],
        "endpoint:ep1": [],
    }
    assert "javascript" not in svg


def test_data_is_escaped_everywhere() -> None:
    evil = '<script>alert("x")</script>'
    nodes = [
        Node("training-job", 'j"><script>', evil, '"><img src=x onerror=alert(1)>', "prod<"),
        node("endpoint", "e", "ok"),
    ]
    edges = [Edge('training-job:j"><script>', "endpoint:e", evil)]
    svg = lineage_svg(Lineage(nodes[0].key, nodes, edges), lambda n: f"/x?{evil}")
    assert "<script>" not in svg
    assert "<img" not in svg
    found = groups(svg, "data-key")  # parses: no attribute was broken out of
    assert 'training-job:j"><script>' in found
    assert (
        found['training-job:j"><script>'].attrib["class"].split()[2]
        == "status-img-src-x-onerror-alert-1"
    )


def test_control_characters_do_not_break_the_xml() -> None:
    graph = Lineage("pipeline:p", [node("pipeline", "p", "bell\x07 and nul\x00")], [])
    assert "pipeline:p" in groups(lineage_svg(graph), "data-key")


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://github.com/o/r/pull/1", True),
        ("http://mlflow:5000/#/runs/1", True),
        ("/console/jobs/1?tab=logs", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<b>", False),
        ("//evil.example.com/", False),
        ("/\\evil.example.com/", False),
        ("https:///no-host", False),
        ("console/relative", False),
        ("", False),
        (None, False),
    ],
)
def test_safe_href(url: str | None, kept: bool) -> None:
    assert safe_href(url) == (url if kept else None)


def test_css_token() -> None:
    assert css_token("Succeeded") == "succeeded"
    assert css_token("PR open") == "pr-open"
    assert css_token(None) == "none"
    assert css_token("***") == "none"


# --- pipeline stages -------------------------------------------------------------------------


def argo_manifest(*, nodes: int = 2) -> dict[str, Any]:
    """A Workflow shaped like llmops_workflow.render.workflow's (multi-node: a rendezvous)."""
    run_arg = {"parameters": [{"name": "mlflow-run-id", "value": "{{tasks.prepare-data...}}"}]}
    tasks: list[dict[str, Any]] = [
        {"name": "prepare-data", "template": "prepare-data"},
        {"name": "rendezvous", "template": "rendezvous"},
        {
            "name": "train",
            "template": "train",
            "depends": "prepare-data && rendezvous",
            "withSequence": {"count": str(nodes)},
            "arguments": run_arg,
        },
        {"name": "evaluate", "template": "evaluate", "depends": "train", "arguments": run_arg},
        {"name": "register", "template": "register", "depends": "evaluate", "arguments": run_arg},
    ]
    steps = [
        {"name": name, "container": {"image": "trainer"}} for name in ("prepare-data", "train")
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": WORKFLOW},
        "spec": {
            "entrypoint": "pipeline",
            "templates": [*steps, {"name": "pipeline", "dag": {"tasks": tasks}}],
        },
    }


def reported(name: str, phase: str, message: str | None = None, **times: str) -> dict[str, Any]:
    return {"name": name, "phase": phase, "message": message, **times}


def test_the_dag_comes_from_the_manifest_with_phases_of_both_name_forms() -> None:
    stages = pipeline_stages(
        argo_manifest(),
        [
            reported(WORKFLOW, "Running"),  # the workflow's own node: no stage
            reported(f"{WORKFLOW}.prepare-data", "Succeeded"),
            reported("rendezvous", "Succeeded"),
            reported(f"{WORKFLOW}.train(0:0)", "Running"),
            reported("train(1:1)", "Succeeded"),
        ],
    )
    by_name = {stage.name: stage for stage in stages}
    assert list(by_name) == ["prepare-data", "rendezvous", "train", "evaluate", "register"]
    assert by_name["train"].depends == ("prepare-data", "rendezvous")
    assert by_name["evaluate"].depends == ("train",)
    phases = {name: stage.phase for name, stage in by_name.items()}
    assert phases == {
        "prepare-data": "Succeeded",
        "rendezvous": "Succeeded",
        "train": "Running",
        "evaluate": None,
        "register": None,
    }


def test_retries_are_one_stage_showing_the_latest_attempt() -> None:
    stages = pipeline_stages(
        argo_manifest(nodes=1),
        [
            reported("prepare-data(0)", "Error", "pod deleted", started_at="2025-01-01T00:00:00Z"),
            reported("prepare-data(1)", "Succeeded", finished_at="2025-01-01T00:05:00Z"),
            reported(f"{WORKFLOW}.train(0:0)(0)", "Failed", "exit code 1"),
            reported(f"{WORKFLOW}.train(1:1)(0)", "Succeeded"),
        ],
    )
    by_name = {stage.name: stage for stage in stages}
    assert len(stages) == 5
    prepare = by_name["prepare-data"]
    assert (prepare.phase, prepare.started_at, prepare.finished_at) == (
        "Succeeded",
        "2025-01-01T00:00:00Z",
        "2025-01-01T00:05:00Z",
    )
    assert (by_name["train"].phase, by_name["train"].message) == ("Failed", "exit code 1")


def test_depends_expressions_and_dependencies_lists() -> None:
    manifest = {
        "spec": {
            "templates": [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {"name": "a"},
                            {"name": "b", "dependencies": ["a", "unknown"]},
                            {"name": "c", "depends": "(a.Succeeded || b.Failed) && !b.Skipped"},
                            {"name": "d", "depends": "c.AnySucceeded && d"},
                        ]
                    },
                }
            ]
        }
    }
    depends = {stage.name: stage.depends for stage in pipeline_stages(manifest, None)}
    assert depends == {"a": (), "b": ("a",), "c": ("a", "b"), "d": ("c",)}


def test_the_real_workflow_renderer_gives_its_dag() -> None:
    from llmops_shared.specs import TrainJobSpec
    from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC
    from llmops_workflow.render.request import RenderOptions, TrainRequest
    from llmops_workflow.render.workflow import render_workflow

    data = copy.deepcopy(SEED_TRAIN_JOB_SPEC)
    data["resources"] = {**data["resources"], "nodes": 2}
    request = TrainRequest(job_id="j1", namespace="ns", spec=TrainJobSpec.model_validate(data))
    manifest = render_workflow(request, RenderOptions())
    name = manifest["metadata"]["name"]
    stages = pipeline_stages(manifest, [reported(f"{name}.rendezvous(0)", "Succeeded")])
    assert [s.name for s in stages] == [
        "prepare-data",
        "rendezvous",
        "train",
        "evaluate",
        "register",
    ]
    assert stages[2].depends == ("prepare-data", "rendezvous")
    assert stages[1].phase == "Succeeded"


@pytest.mark.parametrize(
    "manifest", [None, {"kind": "List", "items": []}, {"spec": {"templates": []}}]
)
def test_without_a_dag_the_reported_nodes_form_a_chain(manifest: dict[str, Any] | None) -> None:
    nodes = [
        reported("prepare-data", "Succeeded"),
        reported("train", "Failed", "OOM"),
        reported("train", "Running"),
        {"phase": "Running"},  # no name: nothing to draw
        "not a node",
        reported("evaluate", "Pending"),
    ]
    stages = pipeline_stages(manifest, nodes)
    assert [(s.name, s.depends, s.phase) for s in stages] == [
        ("prepare-data", (), "Succeeded"),
        ("train", ("prepare-data",), "Running"),
        ("evaluate", ("train",), "Pending"),
    ]
    assert pipeline_stages(manifest, None) == []


# --- pipeline SVG ----------------------------------------------------------------------------


def test_pipeline_svg_draws_the_dag_with_phases_and_messages() -> None:
    stages = pipeline_stages(
        argo_manifest(),
        [
            reported(
                "prepare-data",
                "Succeeded",
                started_at="2025-01-01T00:00:00+00:00",
                finished_at="2025-01-01T00:04:05+00:00",
            ),
            reported("rendezvous", "Succeeded"),
            reported("train(0:0)", "Failed", "<b>OOMKilled</b> & more"),
        ],
    )
    svg = pipeline_svg(stages)
    assert isinstance(svg, Markup)
    assert "<b>" not in svg
    root = parse(svg)
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-label"] == "Pipeline of 5 stages"
    found = groups(svg, "data-stage")
    assert list(found) == ["prepare-data", "rendezvous", "train", "evaluate", "register"]
    assert "phase-failed" in found["train"].attrib["class"].split()
    assert "phase-none" in found["register"].attrib["class"].split()
    title = found["train"].find(f"{SVG}title")
    assert title is not None
    assert "<b>OOMKilled</b> & more" in (title.text or "")
    texts = {t.attrib["class"]: t.text for t in found["prepare-data"].iter(f"{SVG}text")}
    assert texts["duration"] == "took 4m 05s"
    x = {name: rect(g)[0] for name, g in found.items()}
    assert x["prepare-data"] == x["rendezvous"] < x["train"] < x["evaluate"] < x["register"]
    edges = [p for p in root.iter(f"{SVG}path") if "data-source" in p.attrib]
    assert {(p.attrib["data-source"], p.attrib["data-target"]) for p in edges} == {
        ("prepare-data", "train"),
        ("rendezvous", "train"),
        ("train", "evaluate"),
        ("evaluate", "register"),
    }
    for one, other in itertools.combinations([rect(g) for g in found.values()], 2):
        assert not overlap(one, other)


@pytest.mark.timeout(10)
def test_pipeline_svg_tolerates_cycles_duplicates_and_nothing() -> None:
    stages = [Stage("a", depends=("b",)), Stage("b", depends=("a", "missing")), Stage("a")]
    assert set(groups(pipeline_svg(stages), "data-stage")) == {"a", "b"}
    assert groups(pipeline_svg([]), "data-stage") == {}
