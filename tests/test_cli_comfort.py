"""CLI comfort (issue 19 §6): ``authd --version`` and shell completion scripts."""

from __future__ import annotations

import subprocess

from tests.support.servers import run_cli


def test_version_names_the_installed_release() -> None:
    """``authd --version`` prints the program name and the installed version, exit 0."""
    from importlib.metadata import version

    result = run_cli(["--version"], {})
    assert (result.returncode, result.stdout) == (0, f"authd {version('authd')}\n")


def complete_in_bash(words: list[str]) -> list[str]:
    """What bash offers for ``words`` (the last one being typed) with authd's script loaded."""
    script = run_cli(["completion", "bash"], {}).stdout
    words_literal = " ".join(f"'{word}'" for word in words)
    probe = (
        f"COMP_WORDS=({words_literal}); COMP_CWORD={len(words) - 1}; "
        'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; '
        '_shtab_authd; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(
        ["bash", "-c", f"{script}\n{probe}"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completion_offers_commands() -> None:
    """In bash, ``authd cl<TAB>`` completes to the clients command."""
    assert complete_in_bash(["authd", "cl"]) == ["clients"]


def test_bash_completion_offers_a_subcommand_s_options() -> None:
    """In bash, ``authd apikeys create --cl<TAB>`` completes to --client."""
    assert complete_in_bash(["authd", "apikeys", "create", "--cl"]) == ["--client"]


def test_zsh_completion_is_a_compdef_script_for_authd() -> None:
    """``authd completion zsh`` prints a #compdef script naming authd's commands."""
    script = run_cli(["completion", "zsh"], {}).stdout
    assert script.startswith("#compdef authd")
    assert "apikeys" in script and "rotate" in script


def test_unknown_shell_is_a_usage_error() -> None:
    """An unsupported shell is a one-line usage error with exit status 2, no traceback."""
    result = run_cli(["completion", "cmd.exe"], {}, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("authd: argument shell: invalid choice")
    assert "Traceback" not in result.stderr
