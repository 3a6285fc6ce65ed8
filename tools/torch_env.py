"""What the reference generators share before they import torch."""
import os
import sys


def ensure_torch(script):
    """Re-run the calling script under Debian's /usr/bin/python3 when torch is
    not importable here (e.g. a pyenv python3 earlier in PATH); `script`
    names it in the message when that does not help either."""
    try:
        import torch  # noqa: F401
        return
    except ImportError:
        pass
    system_python = "/usr/bin/python3"
    if (os.environ.get("GEN_GOLDEN_REEXEC") != "1" and os.path.exists(system_python)
            and os.path.realpath(sys.executable) != os.path.realpath(system_python)):
        os.environ["GEN_GOLDEN_REEXEC"] = "1"
        os.execv(system_python, [system_python] + sys.argv)
    sys.exit(script + ": PyTorch is not importable; run it with /usr/bin/python3 "
             "(Debian python3-torch)")
