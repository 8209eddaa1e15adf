"""Helpers for the placement checks: build CIBs offline, normalise them, run crm_simulate.

No daemons: everything works on CIB files in a temporary directory (cibadmin, pcs -f,
CIB_file=… crm, crm_simulate, crm_verify, crm_mon with CIB_file).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
GENERATOR = REPO / "crm-config" / "hamail-cluster-config"
LAYOUTS = REPO / "crm-config" / "layouts"
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE_GOLDEN = os.environ.get("HAMAIL_UPDATE_GOLDEN") == "1"

# unittest class name -> layout file stem. The lab layout is always built with --lab.
LAYOUT_CLASSES = {"Pair": "pair", "NPlus1": "n-plus-1", "NPlusM": "n-plus-m", "Lab": "lab"}


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    r = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def generator(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(private_crmsh([str(GENERATOR), *args]), check=check)


def private_crmsh(cmd: list[str]) -> list[str]:
    """cmd in a private mount namespace with a fresh tmpfs on /var/log/crmsh, when root: crmsh
    always appends to /var/log/crmsh/crmsh.log, and the tests leave the system as it was."""
    if os.geteuid() != 0 or not os.path.isdir("/var/log/crmsh"):
        return cmd
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs hamail-test /var/log/crmsh && exec "$@"', "sh", *cmd]


def layout_path(name: str) -> str:
    return str(LAYOUTS / f"{name}.toml")


def load_layout(name: str):
    """The generator's own parsed layout (it is a script, so import it by path)."""
    import importlib.machinery
    import importlib.util
    import sys
    if "hamail_cluster_config" in sys.modules:
        mod = sys.modules["hamail_cluster_config"]
        return mod, mod.load_layout(layout_path(name))
    loader = importlib.machinery.SourceFileLoader("hamail_cluster_config", str(GENERATOR))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = mod  # dataclasses look their module up there
    loader.exec_module(mod)
    return mod, mod.load_layout(layout_path(name))


# drbdadm (drbd-utils 9.x) picks its tools by the version of the DRBD kernel module: with an
# 8.4 module (Debian 12's kernel) it hands over to drbdadm-84, which reads only 8.4 syntax.
# DRBD_DRIVER_VERSION_OVERRIDE stands in for the module, so a resource file is parsed by the
# tools of the DRBD version it is written for, whatever module this machine has (usually none).
DRBD_MODULE_VERSION = {"8.4": "8.4.11", "9": "9.2.2"}


def drbdadm(version: str, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """drbdadm ARGS as it runs next to a DRBD `version` kernel module (prefix: e.g. unshare)."""
    return run([*prefix, "drbdadm", *args], check=False,
               env={"DRBD_DRIVER_VERSION_OVERRIDE": DRBD_MODULE_VERSION[version]})


def drbd_version_of(res_text: str) -> str:
    """The DRBD version a generated resource file names in its first line."""
    m = re.match(r"# DRBD (\S+) resource ", res_text)
    if not m:
        raise AssertionError("a generated DRBD file names its version in its first line")
    return m.group(1)


def build_cib(layout: str, out: Path, form: str) -> Path:
    """The layout's CIB built offline from one form. The crm form goes through the generator's
    own `cib` subcommand; the pcs form runs the generated script's commands through pcs in one
    process (pcs_batch.py: the same pcs entry point, without ~0.6 s of start-up per command).
    test_generator checks that this equals `cib --form pcs`, which runs the script with sh."""
    lab = ["--lab"] if layout == "lab" else []
    if form == "crm":
        generator("cib", *lab, layout_path(layout), "--out", str(out), "--form", "crm")
        return out
    script = generator("pcs", *lab, layout_path(layout)).stdout
    out.write_text(run(["cibadmin", "--empty"]).stdout)
    r = subprocess.run([PCS_PYTHON, "-Es", str(Path(__file__).with_name("pcs_batch.py"))],
                       input=json.dumps(pcs_commands(script, out)), capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"the pcs form of {layout} failed:\n{r.stdout}\n{r.stderr}")
    return out


# The interpreter pcs is installed for (/usr/sbin/pcs starts with #!/usr/bin/python3 -Es).
PCS_PYTHON = "/usr/bin/python3"


def pcs_commands(script: str, cib: Path) -> list[list[str]]:
    """The pcs command lines of a generated pcs form, as argument lists without "pcs", with
    $CIB expanded. Anything else in the script but its two preamble lines is an error."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line == "set -eu" or line.startswith(': "${CIB'):
            continue
        if not line.startswith('pcs -f "$CIB" '):
            raise AssertionError(f"unexpected line in the pcs form: {line}")
        commands.append(shlex.split(line.replace('"$CIB"', shlex.quote(str(cib))))[1:])
    return commands


# ---------------------------------------------------------------------------------------------
# Normalising a CIB's configuration section, so the pcs and the crmsh form can be compared.
#
# What is normalised, and why each is not a difference in configuration:
# - XML comments are dropped: crmsh stores the `#` comments of a loaded file as XML comments.
# - Attribute order is irrelevant in XML; elements are rendered with sorted attributes.
# - Generated ids are dropped on nvpair, op, expression, instance_attributes and
#   meta_attributes: pcs and crmsh name these differently (e.g. `…-monitor-interval-30s` vs
#   `…-monitor-30s`, `rsc_defaults-meta_attributes` vs `rsc-options`) and nothing refers to them.
#   Ids of resources, constraints, rules and the property set are compared.
# - Attributes at their schema default are filled in: rule boolean-op="and",
#   rsc_colocation rsc-role="Started" (pcs writes them, crmsh leaves them out).
# - Children whose order has no meaning are sorted: nvpairs of a set, operations, the
#   expressions of an "and" rule, a clone's meta_attributes vs its primitive, constraints, and the
#   top-level resources. Group members are NOT sorted: their order is the start order.
#   The top-level resource order can break allocation ties in the scheduler, so the tests also
#   compare crm_simulate's placement of both forms, not only their normalised XML.

_DROP_ID = {"nvpair", "op", "expression", "instance_attributes", "meta_attributes"}
_DEFAULTS = {"rule": {"boolean-op": "and"}, "rsc_colocation": {"rsc-role": "Started"}}
_SORTED = {"instance_attributes", "meta_attributes", "cluster_property_set", "operations",
           "resources", "constraints", "clone", "rule", "crm_config", "rsc_defaults"}


def _canon(e: ET.Element) -> str:
    attrs = dict(e.attrib)
    if e.tag in _DROP_ID:
        attrs.pop("id", None)
    for k, v in _DEFAULTS.get(e.tag, {}).items():
        attrs.setdefault(k, v)
    children = [_canon(c) for c in e if isinstance(c.tag, str)]
    if e.tag in _SORTED:
        children.sort()
    head = e.tag + "".join(f' {k}="{attrs[k]}"' for k in sorted(attrs))
    if not children:
        return f"<{head}/>"
    inner = "\n".join("  " + line for c in children for line in c.splitlines())
    return f"<{head}>\n{inner}\n</{e.tag}>"


def normalised_configuration(cib: Path) -> str:
    # ElementTree's default parser drops comments.
    root = ET.parse(cib).getroot()
    return _canon(root.find("configuration")) + "\n"


# ---------------------------------------------------------------------------------------------
# crm_simulate


# A fixed "now", so injected failures carry the same last-failure time in every run (golden
# files) and failure-timeout never expires between the steps of a scenario.
SIMULATED_NOW = "2026-01-01 12:00:00Z"


def simulate(cib_in: Path, cib_out: Path, *args: str) -> str:
    r = run(["crm_simulate", "-x", str(cib_in), "-S", "-O", str(cib_out),
             "--set-datetime", SIMULATED_NOW, *args])
    return r.stdout


def summary(sim_output: str) -> str:
    """crm_simulate -S output without "Executing Cluster Transition" (the action-by-action list,
    whose interleaving of pseudo actions is an implementation detail) — what the golden holds.
    The only rewrite: injected last-failure times become <time>."""
    out, skip = [], False
    for line in sim_output.splitlines():
        if line.startswith("Executing Cluster Transition:"):
            skip = True
            continue
        if skip and line and not line.startswith(" "):
            skip = False
        if not skip:
            # Injected failures are stamped with the wall clock (--set-datetime does not apply).
            line = re.sub(r"(last-failure-\S+=)\d+", r"\1<time>", line)
            out.append(line.rstrip())
    return "\n".join(out).strip() + "\n"


def transition_summary(sim_output: str) -> list[str]:
    """The lines of the "Transition Summary" section, whitespace collapsed."""
    lines, inside = [], False
    for line in sim_output.splitlines():
        if line.startswith("Transition Summary:"):
            inside = True
            continue
        if inside:
            if not line.strip():
                break
            lines.append(" ".join(line.split()).removeprefix("* "))
    return lines


def check_golden(testcase, name: str, text: str) -> None:
    path = GOLDEN / f"{name}.summary"
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    testcase.assertTrue(path.exists(), f"no golden file {path} (HAMAIL_UPDATE_GOLDEN=1 writes it)")
    expected = path.read_text()
    if expected != text:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            str(path), "crm_simulate"))
        testcase.fail(f"crm_simulate output differs from {path}:\n{diff}")


# ---------------------------------------------------------------------------------------------
# Where things run, from crm_mon's XML of a (simulated) CIB.


@dataclass
class Placement:
    online: set[str]
    # resource id (primitive, or a clone's primitive) -> list of (node, role)
    running: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def nodes(self, rsc: str, role: str | None = None) -> list[str]:
        return [n for n, r in self.running.get(rsc, []) if role is None or r == role]


def placement(cib: Path) -> Placement:
    r = run(["crm_mon", "-1", "--output-as=xml", "--inactive"], env={"CIB_file": str(cib)})
    root = ET.fromstring(r.stdout)
    online = {n.get("name") for n in root.iter("node")
              if n.get("online") == "true" and n.get("type") == "member"}
    p = Placement(online=online)
    for res in root.find("resources").iter("resource"):
        for n in res.findall("node"):
            p.running.setdefault(res.get("id"), []).append((n.get("name"), res.get("role")))
    return p
