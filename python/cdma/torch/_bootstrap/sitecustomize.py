"""Bootstrap of `cdma capture --torch` (docs/TORCH_CAPTURE.md, "Unmodified scripts").

The launcher puts this folder first on PYTHONPATH, so Python imports this file at startup in every
process of the command. It runs any other sitecustomize first (the one it shadows: Debian's, a
virtual environment's), then, when CDMA_TORCH_OUTPUT is set, waits for the program to import torch
and arms cdma.torch._launch there. Standard library only until torch is imported, so a Python
process that never imports torch pays next to nothing. Never raises: a failure is one warning.
"""

import importlib
import importlib.abc
import os
import sys


def _chain():
    here = os.path.dirname(os.path.abspath(__file__))
    me = sys.modules.get(__name__)
    saved = sys.path[:]
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
        sys.modules.pop(__name__, None)
        try:
            other = importlib.import_module("sitecustomize")
            sys.modules["_cdma_chained_sitecustomize"] = other
        except ImportError:
            pass
    except Exception as e:  # noqa: BLE001 - the other sitecustomize failed: say so, go on
        print(f"cdma capture --torch: warning: the chained sitecustomize failed: {e!r}", file=sys.stderr)
    finally:
        sys.path[:] = saved
        if me is not None:
            sys.modules[__name__] = me


class _TorchFinder(importlib.abc.MetaPathFinder):
    """Arms the capture once `import torch` has finished executing."""

    def find_spec(self, name, path, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec("torch")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_arm(module):
            exec_module(module)
            try:
                from cdma.torch import _launch

                _launch.arm_from_env()
            except Exception as e:  # noqa: BLE001 - never fail the host program
                print(f"cdma capture --torch: warning: capture not armed: {type(e).__name__}: {e}", file=sys.stderr)

        spec.loader.exec_module = exec_and_arm
        return spec


_chain()
if os.environ.get("CDMA_TORCH_OUTPUT") and "torch" not in sys.modules:
    sys.meta_path.insert(0, _TorchFinder())
