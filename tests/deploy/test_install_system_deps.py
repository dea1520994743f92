"""scripts/install_system_deps.sh, run against stub commands (no apt, nothing installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "install_system_deps.sh"
TOOLS = {"promtool": "prometheus", "pg_ctlcluster": "postgresql", "java": "openjdk-17-jre-headless",
         "mvn": "maven", "javac": "openjdk-17-jdk-headless", "chromium": "chromium",
         "chromedriver": "chromium-driver", "kubectl": "kubectl"}
REAL_UTILITIES = ["bash", "head", "sed", "ls", "paste", "tee", "chmod", "rm", "cat"]


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A PATH with only stub tools, a stub apt-get that records its calls, and real utilities."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in REAL_UTILITIES:
        real = shutil.which(name)
        assert real, name
        (bin_dir / name).symlink_to(real)
    _write(bin_dir / "id", "#!/bin/sh\necho 0\n")
    # apt-get: log the call and whether policy-rc.d exists; `install` provides the tools asked for
    # unless APT_PROVIDES_NOTHING is set.
    providers = "\n".join(f"    {pkg}) tool={tool} ;;" for tool, pkg in TOOLS.items())
    _write(bin_dir / "apt-get", f"""#!/bin/bash
echo "$* policy=$([ -e "$HEALTHMATE_POLICY_RC_D" ] && echo yes || echo no)" >> "$APT_LOG"
[ "$1" = install ] || exit 0
[ -n "${{APT_PROVIDES_NOTHING:-}}" ] && exit 0
for pkg in "$@"; do
  case "$pkg" in
{providers}
    *) continue ;;
  esac
  printf '#!/bin/sh\\necho "%s 1.0"\\n' "$tool" > "{bin_dir}/$tool"
  chmod 755 "{bin_dir}/$tool"
done
""")
    return tmp_path


def _install_tools(sandbox: Path, names: list[str]) -> None:
    for name in names:
        _write(sandbox / "bin" / name, f'#!/bin/sh\necho "{name} 1.0"\n')


def _run(sandbox: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(sandbox / "bin"),
        "APT_LOG": str(sandbox / "apt.log"),
        "HEALTHMATE_POLICY_RC_D": str(sandbox / "policy-rc.d"),
        **extra,
    }
    return subprocess.run([str(sandbox / "bin" / "bash"), str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def _apt_calls(sandbox: Path) -> list[str]:
    log = sandbox / "apt.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_script_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert os.access(SCRIPT, os.X_OK), "scripts/install_system_deps.sh must be executable"


def test_fast_path_does_not_touch_apt(sandbox: Path) -> None:
    _install_tools(sandbox, list(TOOLS))
    result = _run(sandbox)
    assert result.returncode == 0, result.stderr
    assert _apt_calls(sandbox) == []
    assert "apt not needed" in result.stdout
    assert "promtool: promtool 1.0" in result.stdout  # versions are printed


def test_installs_only_what_is_missing_without_starting_services(sandbox: Path) -> None:
    _install_tools(sandbox, ["pg_ctlcluster", "java", "mvn", "javac", "chromium", "chromedriver", "kubectl"])
    result = _run(sandbox)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _apt_calls(sandbox) == [
        "update -qq policy=yes",
        "install -y -qq --no-install-recommends prometheus policy=yes",
    ]
    assert not (sandbox / "policy-rc.d").exists(), "the temporary policy-rc.d must be removed"
    assert (sandbox / "bin" / "promtool").exists()


def test_existing_policy_file_is_left_alone(sandbox: Path) -> None:
    _install_tools(sandbox, ["promtool", "java", "mvn", "javac", "chromium", "chromedriver", "kubectl"])
    (sandbox / "policy-rc.d").write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
    result = _run(sandbox)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _apt_calls(sandbox)[-1] == "install -y -qq --no-install-recommends postgresql policy=yes"
    assert (sandbox / "policy-rc.d").exists()


def test_fails_when_the_install_did_not_provide_the_tool(sandbox: Path) -> None:
    _install_tools(sandbox, ["pg_ctlcluster", "java", "mvn", "javac", "chromium", "chromedriver", "kubectl"])
    result = _run(sandbox, APT_PROVIDES_NOTHING="1")
    assert result.returncode != 0
    assert "still missing" in result.stderr
