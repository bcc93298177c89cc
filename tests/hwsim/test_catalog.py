"""Shipped machines by name: ``--arch h200``, ``extends: h100-sxm``, ``hwsim machines``."""

from __future__ import annotations

import importlib.metadata
import shutil

import pytest
import yaml

import hwsim
from hwsim.cli.main import main, split_debug
from hwsim.config import catalog
from hwsim.errors import ConfigError

from ..conftest import ARCH, EXAMPLES


def test_every_machine_file_is_a_shipped_machine_with_its_description():
    shipped = {m.name: m for m in catalog.machines()}
    assert sorted(shipped) == sorted(p.stem for p in ARCH.glob("*.yaml"))
    for name, machine in shipped.items():
        assert machine.path.samefile(ARCH / f"{name}.yaml")
        described = yaml.safe_load(machine.path.read_text()).get("description", "")
        assert machine.description == " ".join(str(described).split())


def test_a_name_loads_the_same_machine_as_its_file():
    by_name = hwsim.load_arch("h200")
    by_file = hwsim.load_arch(ARCH / "h200.yaml")
    assert by_name.to_dict() | {"source": ""} == by_file.to_dict() | {"source": ""}
    assert hwsim.load_arch("h200.yaml").name == "h200"


def test_a_file_that_exists_wins_over_a_shipped_name(tmp_path, monkeypatch):
    (tmp_path / "h200").write_text((ARCH / "tiny.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert hwsim.load_arch("h200").name == "tiny"


def test_a_copied_machine_extends_the_shipped_one_by_name(tmp_path):
    # h200.yaml says "extends: h100-sxm.yaml"; alone in a folder it finds the shipped file.
    shutil.copy(ARCH / "h200.yaml", tmp_path / "h200.yaml")
    (tmp_path / "mine.yaml").write_text("extends: h100-sxm\nname: mine\n"
                                        "components: {hbm: {bandwidth: 4 TB/s}}\n")
    assert hwsim.load_arch(tmp_path / "h200.yaml").to_dict()["components"] == \
        hwsim.load_arch("h200").to_dict()["components"]
    mine = hwsim.load_arch(tmp_path / "mine.yaml")
    assert mine.component("hbm").config.bandwidth == 4e12
    assert mine.component("tensor") == hwsim.load_arch("h100-sxm").component("tensor")


def test_an_unknown_name_suggests_the_closest_shipped_machine(tmp_path):
    with pytest.raises(ConfigError, match=r"h20: no such machine file \(did you mean 'h200'\?\)"):
        hwsim.load_arch("h20")
    (tmp_path / "child.yaml").write_text("extends: h10-sxm\n")
    with pytest.raises(ConfigError, match=r"child.yaml:1: extends: .*h10-sxm: no such machine file.*'h100-sxm'"):
        hwsim.load_arch(tmp_path / "child.yaml")
    with pytest.raises(ConfigError, match="no such machine file"):
        hwsim.load_arch(tmp_path / "missing" / "h200.yaml")  # a path is never a name


def test_hwsim_machines_lists_every_machine_with_its_description(capsys):
    assert main(["machines"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == catalog.machine_names()
    h200 = next(line for line in lines if line.startswith("h200 "))
    assert h200.split(None, 1)[1] == catalog.machines()[catalog.machine_names().index("h200")].description


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"hwsim {importlib.metadata.version('hwsim')}"
    assert hwsim.__version__ == importlib.metadata.version("hwsim")


def test_debug_is_found_anywhere_before_a_double_dash():
    assert split_debug(["run", "--arch", "x", "--debug"]) == (["run", "--arch", "x"], True)
    assert split_debug(["--debug", "machines"]) == (["machines"], True)
    assert split_debug(["run", "--", "--debug"]) == (["run", "--", "--debug"], False)


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_after_the_subcommand_shows_the_traceback_and_keeps_exit_2(tmp_path, capsys, where):
    args = ["run", "--arch", str(tmp_path / "missing.yaml"), "--trace", str(EXAMPLES / "gemm.csv"),
            "--out", str(tmp_path / "o")]
    assert main(["--debug", *args] if where == "before" else [*args, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("hwsim: error: ")
