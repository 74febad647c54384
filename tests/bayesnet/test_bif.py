"""BIF reading and writing: round trips, agreement with pgmpy's reader and writer, and
line-numbered errors for malformed files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from latentkit.bayesnet import BIFError, DiscreteBayesNet, read_bif
from latentkit.bayesnet.synthetic import make_random_network


def _pgmpy():
    pytest.importorskip("pgmpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pgmpy import readwrite, utils
    return readwrite, utils


def pgmpy_cpt(cpd, parents):
    """A pgmpy TabularCPD as our layout (parents in `parents` order..., variable)."""
    evidence = list(cpd.variables[1:])
    k = cpd.variable_card
    table = cpd.get_values().T.reshape([cpd.cardinality[1 + i] for i in range(len(evidence))]
                                       + [k])
    return table.transpose([evidence.index(p) for p in parents] + [len(evidence)])


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_preserves_every_cpt(tmp_path, seed):
    net = make_random_network(12, cardinality=(2, 4), max_parents=3, random_state=seed,
                              state_names=None)
    path = tmp_path / "net.bif"
    net.to_bif(path)
    back = DiscreteBayesNet.from_bif(path)
    assert back.variables == net.variables
    assert [tuple(e) for e in back.edges] == [tuple(e) for e in net.edges]
    for name in net.variables:
        np.testing.assert_array_equal(back.cpts_[name] if hasattr(back, "cpt_values_")
                                      else back._cpts()[net.variables.index(name)],
                                      np.asarray(net.cpts[name]))
    assert back.to_bif() == net.to_bif()


def test_state_names_survive_and_pgmpy_reads_our_file(tmp_path):
    readwrite, _ = _pgmpy()
    net = DiscreteBayesNet(
        edges=[("rain", "wet"), ("sprinkler", "wet")],
        cardinalities={"rain": 2, "sprinkler": 2, "wet": 3},
        state_names={"rain": ["no", "yes"], "sprinkler": ["off", "on"],
                     "wet": ["dry", "damp", "soaked"]},
        cpts={"rain": [0.8, 0.2], "sprinkler": [0.6, 0.4],
              "wet": [[[0.9, 0.08, 0.02], [0.2, 0.5, 0.3]],
                      [[0.1, 0.6, 0.3], [0.01, 0.19, 0.8]]]})
    text = net.to_bif()
    back = DiscreteBayesNet(**read_bif(text))
    assert back.state_names["wet"] == ["dry", "damp", "soaked"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = readwrite.BIFReader(string=text).get_model()
    for name in net.variables:
        cpd = model.get_cpds(name)
        assert [str(s) for s in cpd.state_names[name]] == net.state_names[name]
        parents = [p for p, c in net.edges if c == name]
        np.testing.assert_allclose(pgmpy_cpt(cpd, parents), np.asarray(net.cpts[name]),
                                   atol=1e-12)


def test_reads_pgmpy_asia_and_agrees_on_inference():
    readwrite, utils = _pgmpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = utils.get_example_model("asia")
        text = str(readwrite.BIFWriter(model))
        from pgmpy.inference import VariableElimination

        reference = VariableElimination(model).query(["lung", "tub"],
                                                     evidence={"xray": "yes", "asia": "yes"},
                                                     show_progress=False)
    net = DiscreteBayesNet(**read_bif(text, source="asia.bif"))
    for name in net.variables:
        parents = [p for p, c in net.edges if c == name]
        np.testing.assert_allclose(net._cpts()[net.variables.index(name)],
                                   pgmpy_cpt(model.get_cpds(name), parents), atol=1e-12)
    ours = net.posterior_joint(["lung", "tub"], evidence={"xray": "yes", "asia": "yes"})
    order = reference.variables
    expected = reference.values.transpose([order.index("lung"), order.index("tub")])
    lung_states = reference.state_names["lung"]
    tub_states = reference.state_names["tub"]
    expected = expected[[lung_states.index(s) for s in net.state_names["lung"]]][
        :, [tub_states.index(s) for s in net.state_names["tub"]]]
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_table_default_comments_and_properties():
    text = """
    // a comment
    network test { property author = "someone"; }
    variable A { type discrete [ 2 ] { f, t }; property position = (1, 2); }
    variable B { type discrete [ 3 ] { x y z }; }   /* spaces separate states too */
    probability ( A ) { table 0.25 0.75 ; }
    probability ( B | A ) {
      default 0.2, 0.3, 0.5;
      (t) 0.1, 0.1, 0.8;
    }
    """
    spec = read_bif(text)
    np.testing.assert_array_equal(spec["cpts"]["A"], [0.25, 0.75])
    np.testing.assert_array_equal(spec["cpts"]["B"], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    # a conditional `table`: the variable's state slowest, the last parent fastest
    table = read_bif("""variable A { type discrete [ 2 ] { 0, 1 }; }
        variable B { type discrete [ 2 ] { 0, 1 }; }
        probability ( A ) { table 0.5, 0.5; }
        probability ( B | A ) { table 0.9, 0.2, 0.1, 0.8; }""")["cpts"]["B"]
    np.testing.assert_array_equal(table, [[0.9, 0.1], [0.2, 0.8]])


GOOD = """network n {
}
variable A {
  type discrete [ 2 ] { f, t };
}
variable B {
  type discrete [ 2 ] { f, t };
}
probability ( A ) {
  table 0.5, 0.5;
}
probability ( B | A ) {
  (f) 0.9, 0.1;
  (t) 0.2, 0.8;
}
"""


@pytest.mark.parametrize("old, new, match", [
    ("  table 0.5, 0.5;", "  table 0.5, 0.5", r"bad.bif:11: expected a probability, got '}'"),
    ("(t) 0.2, 0.8;", "(maybe) 0.2, 0.8;", r"bad.bif:14: 'maybe' is not a state of 'A'"),
    ("(t) 0.2, 0.8;", "(t) 0.2, 0.3, 0.5;", r"bad.bif:14: the row of 'B' needs 2 values"),
    ("(t) 0.2, 0.8;", "", r"bad.bif:12: the CPT of 'B' has no row for \(A=t\)"),
    ("(t) 0.2, 0.8;", "(t) 0.2, 0.7;", r"bad.bif:12: .*row \(A=1\) sums to 0.9"),
    ("(t) 0.2, 0.8;", "(t) 0.2, x;", r"bad.bif:14: expected a probability, got 'x'"),
    ("probability ( B | A )", "probability ( B | Q )", r"bad.bif:12: .*'Q', which has no"),
    ("[ 2 ] { f, t };\n}\nvariable B", "[ 3 ] { f, t };\n}\nvariable B",
     r"bad.bif:3: variable 'A' declares \[ 3 \] states but lists 2"),
    ("type discrete", "type continuous", r"bad.bif:4: only discrete variables"),
    ("probability ( A ) {\n  table 0.5, 0.5;\n}\n", "", r"bad.bif:3: variable 'A' has no "
     "probability block"),
    ("network n {", "netwrk n {", r"bad.bif:1: expected 'network', 'variable' or "
     "'probability', got 'netwrk'"),
    ("(f) 0.9, 0.1;", "(f) 0.9, 0.1; %", r"bad.bif:13: expected 'table', 'default', '\(' or"),
])
def test_malformed_files_give_line_numbered_errors(tmp_path, old, new, match):
    assert old in GOOD
    path = tmp_path / "bad.bif"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(BIFError, match=match):
        DiscreteBayesNet.from_bif(path)


def test_cycle_and_truncation_are_reported():
    cyclic = GOOD.replace("probability ( A ) {\n  table 0.5, 0.5;\n}",
                          "probability ( A | B ) {\n  (f) 0.5, 0.5;\n  (t) 0.5, 0.5;\n}")
    with pytest.raises(BIFError, match="cycle"):
        read_bif(cyclic, source="c.bif")
    with pytest.raises(BIFError, match=r"t.bif:13: expected a probability or ';', got the end"):
        read_bif(GOOD[:GOOD.index("0.1;")], source="t.bif")


def test_names_that_bif_cannot_hold_are_refused():
    net = DiscreteBayesNet(edges=[], cardinalities={"a b": 2}, cpts={"a b": [0.5, 0.5]})
    with pytest.raises(ValueError, match="cannot be written to BIF"):
        net.to_bif()
