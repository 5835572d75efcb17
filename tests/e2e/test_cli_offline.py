"""The flint CLI's behaviour that needs no daemon: help generated from the
command table, usage errors, spec validation, and an unreachable daemon."""
import os
import socket
import subprocess

import pytest

BUILD = os.environ.get("FLINT_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
FLINT = os.path.join(BUILD, "bin", "flint")


def flint(*args, env=None):
    full_env = dict(os.environ)
    full_env.pop("FLINT_TOKEN", None)
    full_env.update(env or {})
    return subprocess.run([FLINT, *args], capture_output=True, text=True, timeout=30, env=full_env)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_help_lists_every_command_family():
    r = flint("help")
    assert r.returncode == 0
    for cmd in ("env create", "fn create", "fn test", "fn logs", "route create", "apply", "status"):
        assert cmd in r.stdout


def test_help_for_one_command_shows_its_options():
    r = flint("help", "route", "create")
    assert r.returncode == 0
    assert "--url PATH" in r.stdout and "--function FN" in r.stdout


def test_help_shows_the_async_options():
    r = flint("help", "route", "create")
    for option in ("--async", "--allow-async", "--callback URL", "--retry-attempts N",
                   "--retry-backoff DURATION", "--retry-max-backoff DURATION"):
        assert option in r.stdout, option
    r = flint("help", "fn", "update")
    assert "--retry-attempts N" in r.stdout and "--retry-max-backoff DURATION" in r.stdout


def test_no_command_is_a_usage_error():
    r = flint()
    assert r.returncode == 2
    assert "Commands:" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["bogus"], "'bogus' is not a flint command"),
        (["fn"], "'fn' needs a subcommand"),
        (["fn", "create", "--name", "x", "--bogus", "1"], "has no option '--bogus'"),
        (["fn", "get"], "needs --name"),
        (["fn", "create", "--name", "x", "--concurrency", "many"], "takes a whole number"),
        (["-o", "xml", "env", "list"], "unknown output format 'xml'"),
        (["apply"], "needs -f"),
        (["route", "create", "--name", "r", "--async=maybe"], "--async takes true or false"),
        (["fn", "create", "--name", "x", "--retry-attempts", "3x"], "takes a whole number"),
        (["fn", "create", "--name", "x", "--async"], "has no option '--async'"),
    ],
)
def test_usage_errors_say_what_is_wrong(args, message):
    r = flint(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


def test_unreachable_daemon_says_what_to_do():
    r = flint("--url", f"http://127.0.0.1:{closed_port()}", "env", "list")
    assert r.returncode == 1
    assert "cannot reach flintd" in r.stderr
    assert "FLINT_URL" in r.stderr


def test_apply_refuses_invalid_specs_with_the_reason(tmp_path):
    cases = {
        "dup.yaml": ("kind: function\nname: a\nname: b\n", "dup.yaml:3:1: duplicate key 'name'"),
        "kind.yaml": ("kind: gadget\nname: a\nspec: {}\n", "'kind' must be environment, function or route"),
        "noname.yaml": ("kind: route\nspec: {}\n", "'name' is missing"),
        "spec.yaml": ("kind: route\nname: r\nspec: [1]\n", "'spec' must be a mapping"),
        "syntax.yaml": ("kind: route\nname: [unclosed\n", "syntax.yaml:"),
        "typo.yaml": ("kind: route\nname: r\nspec: {}\nlabel: {a: b}\n",
                      "route 'r': 'label' is not a field (kind, name, spec)"),
        # refused before any call, never sent as a path cut short
        "long.yaml": ("kind: route\nname: " + "r" * 600 + "\nspec: {}\n", "the name is too long"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        r = flint("--url", f"http://127.0.0.1:{closed_port()}", "apply", "-f", str(path))
        assert r.returncode == 1, (name, r.stderr)
        assert message in r.stderr, (name, r.stderr)


def test_apply_refuses_a_resource_declared_twice(tmp_path):
    (tmp_path / "a.yaml").write_text("kind: environment\nname: py\nspec: {runtime: python}\n")
    (tmp_path / "b.yaml").write_text("kind: environment\nname: py\nspec: {runtime: node}\n")
    r = flint("--url", f"http://127.0.0.1:{closed_port()}", "apply", "-f", str(tmp_path))
    assert r.returncode == 1
    assert "environment 'py' is also declared in" in r.stderr


def test_apply_of_a_folder_too_large_to_read_whole_is_an_error(tmp_path):
    # applying part of it would be wrong, and --prune would delete the rest
    for i in range(257):
        (tmp_path / f"e{i:03}.yaml").write_text(f"kind: environment\nname: e{i}\nspec: {{runtime: c}}\n")
    r = flint("--url", f"http://127.0.0.1:{closed_port()}", "apply", "--prune", "-f", str(tmp_path))
    assert r.returncode == 1
    assert "holds more than 256 spec files" in r.stderr


def test_apply_of_an_empty_directory_is_an_error(tmp_path):
    r = flint("apply", "-f", str(tmp_path))
    assert r.returncode == 1
    assert "holds no .yaml" in r.stderr
