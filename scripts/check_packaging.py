"""The ways people install an MCP server, checked as they will be used:

1. `server.json` (the MCP registry's entry) validates against the registry's schema, kept offline in
   .ci/registry, and names the version and package of pyproject.toml; the README carries its
   `mcp-name:` ownership line.
2. The Claude Desktop extension: `mcpb/manifest.json` with the package staged beside it is checked
   and packed by the MCP Bundle CLI (`@anthropic-ai/mcpb`, from npm) into dist/relatel-mcp-<version>.mcpb;
   the bundle is unpacked and its server started exactly as the manifest says (`uv run` in the
   bundle's directory, the sandbox chosen), and an MCP client calls a tool through it.

3. From a clone, before (and after) the package is on PyPI: `uv build` makes the sdist and, from
   it, the wheel; the sdist must hold every file of the package, and so must the wheel, with its
   `relatel-mcp` command. The wheel is installed with pip in a fresh virtual environment, and
   `relatel-mcp serve --sandbox` started from it; `uvx --from . relatel-mcp serve --sandbox` (the
   README's first command) is started in the clone with an empty uv cache, as on a fresh machine.
   An MCP client calls a tool through each, over stdio.

Run by .ci/run: .venv/bin/python scripts/check_packaging.py (`--no-bundle` leaves out 1 and 2's
bundle, which needs Node from npm, while you work on the rest)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

import anyio
import jsonschema
from mcp import Client, StdioServerParameters
from node_tools import NODE_DIR, install_node_tools

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
BUNDLED = ("pyproject.toml", "README.md", "relatel_mcp")  # what `uv run` needs to build and run it


def main() -> int:
    failures = check_server_json()
    if "--no-bundle" not in sys.argv[1:]:
        bundle, more = build_bundle()
        failures += more
        if bundle is not None:
            failures += anyio.run(run_bundle, bundle)
    failures += check_from_a_clone()
    print("\npackaging:", "FAILED: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


def check_server_json() -> list[str]:
    server = json.loads((ROOT / "server.json").read_text())
    schema = json.loads((ROOT / ".ci" / "registry" / "server.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(server)
    ]
    package = next((p for p in server.get("packages", []) if p.get("registryType") == "pypi"), {})
    remote = next((r for r in server.get("remotes", []) if r.get("type") == "streamable-http"), {})
    expected = [
        (server.get("$schema") == schema["$id"], f"$schema is {schema['$id']}"),
        (server.get("version") == PROJECT["version"], f"version is {PROJECT['version']} (pyproject.toml)"),
        (package.get("version") == PROJECT["version"], "the PyPI package's version is pyproject.toml's"),
        (package.get("identifier") == PROJECT["name"], f"the PyPI package is {PROJECT['name']}"),
        (any(h.get("isSecret") for h in remote.get("headers", []) if h.get("name") == "Authorization"),
         "the remote's Authorization header is marked secret"),
        (f"mcp-name: {server.get('name')}" in (ROOT / "README.md").read_text(), "README.md has its mcp-name: line"),
    ]  # fmt: skip
    problems += [f"expected: {what}" for ok, what in expected if not ok]
    for problem in problems:
        print(f"  server.json: {problem}")
    print(f"server.json against the registry schema {schema['$id']}: {'ok' if not problems else 'FAILED'}")
    return ["server.json"] if problems else []


def build_bundle() -> tuple[Path | None, list[str]]:
    node = install_node_tools()
    mcpb = [str(node), str(NODE_DIR / "node_modules" / "@anthropic-ai" / "mcpb" / "dist" / "cli" / "cli.js")]
    stage = Path(tempfile.mkdtemp(prefix="relatel-mcp-mcpb-"))
    try:
        manifest = staged_manifest()
        if manifest["version"] != PROJECT["version"]:
            print(
                f"mcpb/manifest.json: version {manifest['version']} is not pyproject.toml's {PROJECT['version']}"
            )
            return None, ["mcpb manifest version"]
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        for name in BUNDLED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, stage / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, stage / name)
        bundle = ROOT / "dist" / f"relatel-mcp-{PROJECT['version']}.mcpb"
        bundle.parent.mkdir(exist_ok=True)
        for step in (
            ["validate", str(stage / "manifest.json")],
            ["pack", str(stage), str(bundle)],
            ["info", str(bundle)],
        ):
            done = subprocess.run([*mcpb, *step], capture_output=True, text=True, timeout=300)
            output = (done.stdout + done.stderr).strip()
            print(f"mcpb {step[0]}: {'ok' if done.returncode == 0 else 'FAILED'}")
            print("  " + "\n  ".join(line for line in output.splitlines() if line.strip())[-2000:])
            if done.returncode != 0:
                return None, [f"mcpb {step[0]}"]
        return bundle, []
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def staged_manifest() -> dict:
    """The manifest with the tools of the catalogue (names and descriptions), so it never drifts."""
    sys.path.insert(0, str(ROOT))
    from relatel_mcp.core import catalog

    manifest = json.loads((ROOT / "mcpb" / "manifest.json").read_text())
    manifest["tools"] = [{"name": op.name, "description": op.description} for op in catalog.load()]
    return manifest


async def run_bundle(bundle: Path) -> list[str]:
    """Start the unpacked bundle's server as Claude Desktop would (sandbox chosen, no token)."""
    unpacked = Path(tempfile.mkdtemp(prefix="relatel-mcp-bundle-"))
    try:
        shutil.unpack_archive(bundle, unpacked, format="zip")
        config = json.loads((unpacked / "manifest.json").read_text())["server"]["mcp_config"]
        values = {
            "${__dirname}": str(unpacked),
            "${user_config.sandbox}": "true",
            "${user_config.relatel_token}": "",
        }
        args = [values.get(arg, arg) for arg in config["args"]]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELATEL")}
        env |= {name: values.get(value, value) for name, value in config["env"].items()}
        uv = shutil.which(config["command"]) or install_uv()
        params = StdioServerParameters(command=uv, args=args, env=env, cwd=str(unpacked))
        with anyio.fail_after(600):
            async with Client(params) as session:
                me = await session.call_tool("get_current_employee", {})
        name = me.structured_content["employee"]["name"]
        print(f"the bundle's server ({config['command']} {' '.join(config['args'])}), sandbox chosen: "
              f"get_current_employee -> {name}")  # fmt: skip
        return [] if name == "Mette Hansen" else ["the bundle's server"]
    except Exception as exc:  # report, don't hide: the check fails with the reason
        print(f"the bundle's server: FAILED: {exc!r}")
        return ["the bundle's server"]
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def install_uv() -> str:
    """uv, as the MCP Bundle's host would have it: from PyPI, into this virtual environment."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "uv>=0.8"], check=True)
    return str(Path(sys.executable).with_name("uv"))


# ------------------------------------------------------------------ from a clone: wheel, sdist, uvx


def check_from_a_clone() -> list[str]:
    uv = shutil.which("uv") or install_uv()
    scratch = Path(tempfile.mkdtemp(prefix="relatel-mcp-wheel-"))
    try:
        started = time.monotonic()
        built = subprocess.run([uv, "build", "--out-dir", str(scratch / "dist"), str(ROOT)],
                               capture_output=True, text=True, timeout=600)  # fmt: skip
        if built.returncode != 0:
            print(f"uv build: FAILED\n  {built.stderr.strip()[-2000:]}")
            return ["uv build"]
        [sdist] = (scratch / "dist").glob("*.tar.gz")
        [wheel] = (scratch / "dist").glob("*.whl")
        print(f"uv build: {sdist.name} and, from it, {wheel.name} in {time.monotonic() - started:.1f} s")
        failures = check_contents(sdist, wheel)

        started = time.monotonic()
        venv = scratch / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        installed = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if installed.returncode != 0:
            print(f"pip install {wheel.name} in a fresh venv: FAILED\n  {installed.stderr.strip()[-2000:]}")
            return [*failures, "the wheel's install"]
        print(f"pip install {wheel.name} in a fresh venv: ok in {time.monotonic() - started:.1f} s")
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("RELATEL", "UV_", "VIRTUAL_ENV"))
        }
        runs = {
            "the wheel's relatel-mcp serve --sandbox": StdioServerParameters(
                command=str(venv / "bin" / "relatel-mcp"), args=["serve", "--sandbox"],
                env=environment, cwd=str(scratch),
            ),
            "uvx --from . relatel-mcp serve --sandbox, in the clone, with an empty uv cache": StdioServerParameters(
                command=str(Path(uv).with_name("uvx")), args=["--from", ".", "relatel-mcp", "serve", "--sandbox"],
                env={**environment, "UV_CACHE_DIR": str(scratch / "uv-cache")}, cwd=str(ROOT),
            ),
        }  # fmt: skip
        for what, params in runs.items():
            failures += anyio.run(call_a_tool, what, params)
        return failures
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def package_files() -> set[str]:
    """The package as the clone has it: every file under relatel_mcp/ but Python's caches."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "relatel_mcp").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def check_contents(sdist: Path, wheel: Path) -> list[str]:
    """The sdist holds what building and running need; the wheel, the package and its command."""
    with tarfile.open(sdist) as archive:
        top = f"{sdist.name.removesuffix('.tar.gz')}/"
        in_sdist = {name.removeprefix(top) for name in archive.getnames()}
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
        entry_points = next(
            (archive.read(n).decode() for n in in_wheel if n.endswith(".dist-info/entry_points.txt")), ""
        )
    needed = package_files()
    problems = [
        f"the sdist lacks {name}" for name in sorted(({"pyproject.toml", "README.md"} | needed) - in_sdist)
    ]
    problems += [f"the wheel lacks {name}" for name in sorted(needed - in_wheel)]
    if "relatel-mcp = relatel_mcp.cli:main" not in entry_points:
        problems.append("the wheel has no relatel-mcp command (entry_points.txt)")
    for problem in problems[:20]:
        print(f"  {problem}")
    print(f"the sdist ({len(in_sdist)} files) and the wheel ({len(in_wheel)}) hold the package's "
          f"{len(needed)} files: {'ok' if not problems else 'FAILED'}")  # fmt: skip
    return ["the sdist and wheel's contents"] if problems else []


async def call_a_tool(what: str, params: StdioServerParameters) -> list[str]:
    """Start the server as an MCP client does, and call a tool of the sandbox through it."""
    started = time.monotonic()
    try:
        with anyio.fail_after(600):
            async with Client(params) as session:
                me = await session.call_tool("get_current_employee", {})
        name = me.structured_content["employee"]["name"]
    except Exception as exc:  # report, don't hide: the check fails with the reason
        print(f"{what}: FAILED: {exc!r}")
        return [what]
    print(f"{what}: get_current_employee -> {name} ({time.monotonic() - started:.1f} s to start and answer)")
    return [] if name == "Mette Hansen" else [what]


if __name__ == "__main__":
    sys.exit(main())
