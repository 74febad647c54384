"""latentkit.registry, the public extension point: registering, finding specs by name and
by class, each family's example problem and figures, and a model registered from outside
the library used end to end by the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import latentkit
from latentkit import io, registry
from latentkit.cli.data import Data
from latentkit.cli.main import main
from latentkit.exceptions import InvalidParameterError, UserError
from latentkit.mixture import GaussianMixture
from latentkit.registry import FigureJob, ModelSpec, get_spec, register, spec_for

SHIPPED = ["gmm", "bmm", "cmm", "mppca", "pca", "ppca", "fa", "ica", "lds", "bayesnet"]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registries as they are, restored after the test (specs and io's classes)."""
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    monkeypatch.setattr(io, "_REGISTRY", dict(io._REGISTRY))


class ExtensionMixture(GaussianMixture):
    """A model defined outside latentkit: a Gaussian mixture under another name."""


def extension_figures(job: FigureJob) -> list[tuple[Path, str]]:
    """The extension's own figure: the fitted means as a bar chart."""
    from latentkit import plot
    from latentkit.plot._figure import new_axes

    ax = new_axes(None)
    means = np.asarray(job.model.means_)
    ax.bar(np.arange(means.size), means.ravel())
    ax.set_title(f"{len(means)} component means")
    return [(plot.save_figure(ax, job.out_dir / "means_bar.png"), "the component means")]


def extension_spec(**changes) -> ModelSpec:
    fields = dict(name="extmix", cls=ExtensionMixture, description="a test extension",
                  default_data="faithful", default_data_note="Old Faithful",
                  figures=extension_figures, summary_params=("covariance_type",),
                  default_size=2)
    return ModelSpec(**{**fields, **changes})


# -- the registry's API -------------------------------------------------------------------


def test_every_shipped_model_is_registered_and_public():
    names = list(latentkit.registered_specs())
    assert set(SHIPPED) <= set(names)  # (tests may register more)
    for name in ("ModelSpec", "register", "get_spec", "spec_for", "registered_specs"):
        assert name in latentkit.__all__ and getattr(latentkit, name) is getattr(registry, name)
    for name in SHIPPED:
        spec = get_spec(name)
        assert spec.name == name and spec_for(spec.cls) is spec
        assert io.registered_models()[spec.cls.__name__] is spec.cls  # `load` rebuilds it
        assert spec.size_param is None or spec.size_param in spec.cls().get_params()
    assert get_spec("lds").size_param is None and get_spec("bayesnet").size_param is None
    assert get_spec("gmm").size_param == "n_components"


def test_unknown_names_and_classes_are_user_errors():
    with pytest.raises(InvalidParameterError, match=r"unknown model 'hmm'; known models: .*gmm"):
        get_spec("hmm")
    with pytest.raises(UserError, match="ExtensionMixture is not registered"):
        spec_for(ExtensionMixture())  # a subclass is another model: no fallback to its base


def test_register_refuses_a_taken_name(scratch_registry):
    spec = register(extension_spec())
    assert get_spec("extmix") is spec and spec_for(ExtensionMixture) is spec
    assert io.registered_models()["ExtensionMixture"] is ExtensionMixture
    replaced = register(extension_spec(description="same class again"))
    assert get_spec("extmix") is replaced
    with pytest.raises(InvalidParameterError, match="already belongs to"):
        register(extension_spec(name="gmm"))
    with pytest.raises(TypeError, match="ModelSpec"):
        register("extmix")


# -- every family's example problem and figures -------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_example_fits_and_draws_its_figures(tmp_path, name):
    spec = get_spec(name)
    assert spec.example is not None, f"{name} has no example"
    kwargs, X = spec.example(np.random.default_rng(0))
    assert isinstance(kwargs, dict) and X.dtype == np.float64 and X.ndim == 2
    assert 100 <= len(X) <= 300
    model = spec.cls(**kwargs).fit(X)
    assert np.isfinite(model.score(X))
    if spec.size_param is not None:
        assert getattr(model, spec.size_param) == kwargs[spec.size_param]
    figures = spec.figures(FigureJob(model, Data(X=X, name="example"), tmp_path))
    for path, caption in figures:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and caption
    assert figures or name == "pca", f"{name} drew no figure on its example"


def test_demo_sections_come_from_the_specs():
    from latentkit.cli.demo import sections

    found = sections()
    demos = [spec.demo for spec in latentkit.registered_specs().values() if spec.demo]
    assert found == list(dict.fromkeys(demos))
    shipped = {get_spec(name).demo for name in SHIPPED} - {None}
    assert len(shipped) == 5 and shipped <= set(found)  # one section per family (two mixture)


# -- a model registered from outside the library, used by the command line ----------------


def test_a_registered_extension_works_on_the_command_line(tmp_path, capsys,
                                                          scratch_registry):
    register(extension_spec())
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.5, size=(60, 2)) for c in ([0.0, 0.0], [4.0, 4.0])])
    csv = tmp_path / "data.csv"
    np.savetxt(csv, X, delimiter=",", header="a,b", comments="")
    out = tmp_path / "run"
    code = main(["fit", "extmix", str(csv), "--covariance-type", "diag", "--random-state",
                 "0", "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "extmix (ExtensionMixture)"
    assert summary["n_components"] == 2 and summary["covariance_type"] == "diag"
    assert summary["figures"] == ["means_bar.png"] and (out / "means_bar.png").is_file()
    assert type(latentkit.load(out / "model.npz")) is ExtensionMixture
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.npz"), str(csv)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^model\s+extmix \(ExtensionMixture\)$", printed, re.M)
    assert re.search(r"^rows\s+120$", printed, re.M)
    assert main(["report", str(out / "model.npz"), str(csv), "--out", str(tmp_path / "r")]) == 0
    assert 'src="means_bar.png"' in (tmp_path / "r" / "index.html").read_text()


def test_a_family_flag_belongs_to_its_spec(tmp_path, capsys, scratch_registry):
    def add_flag(parser):
        return [parser.add_argument("--shape-file", metavar="FILE")]

    def flag_kwargs(args):
        if args.shape_file is None:
            raise InvalidParameterError("extmix needs --shape-file")
        return {"covariance_type": Path(args.shape_file).read_text().strip()}

    register(extension_spec(cli_options=add_flag, cli_kwargs=flag_kwargs))
    shape = tmp_path / "shape.txt"
    shape.write_text("spherical\n")
    X = np.random.default_rng(1).normal(size=(80, 2))
    np.save(tmp_path / "x.npy", X)
    assert main(["fit", "extmix", str(tmp_path / "x.npy"), "--shape-file", str(shape), "-q",
                 "--out", str(tmp_path / "run")]) == 0
    assert latentkit.load(tmp_path / "run" / "model.npz").covariance_type == "spherical"
    capsys.readouterr()
    assert main(["fit", "extmix", str(tmp_path / "x.npy"), "-q"]) == 2
    assert capsys.readouterr().err.strip() == "latentkit: error: extmix needs --shape-file"
    assert main(["fit", "gmm", str(tmp_path / "x.npy"), "--shape-file", str(shape)]) == 2
    assert "--shape-file is an option of extmix; gmm does not take it" in capsys.readouterr().err


def test_pytorch_is_imported_on_first_use_only():
    """`import latentkit` leaves torch out (1.6 s, 400 MB); latentkit.VAE, the registry and
    loading a VAE's file bring it in."""
    import subprocess
    import sys

    code = ("import sys, latentkit; assert 'torch' not in sys.modules; "
            "latentkit.GaussianMixture; assert 'torch' not in sys.modules; "
            "latentkit.registered_specs(); assert 'torch' in sys.modules; "
            "from latentkit.registry import get_spec; assert get_spec('vae').cls is latentkit.VAE")
    subprocess.run([sys.executable, "-c", code], check=True)
