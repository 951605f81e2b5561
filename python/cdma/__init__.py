"""cdma: how DNN training activations compress between GPU and host — the Python API.

The same C++ libraries as the ``cdma`` command (no second implementation of any codec, reader or
model), for notebooks and scripts:

    import cdma
    t = cdma.open("data/vgg-fmnist.h5")        # a trace: attrs, tensors() DataFrame, read(), timeline()
    x = t.read(0)                              # numpy array, the tensor's dtype and dims
    df = cdma.analyze(["data/vgg-fmnist.h5"], by="layer", codecs=["zvc", "lz4"])   # tidy DataFrame
    r = cdma.replay(networks=["vgg16"], ratios="data/vgg-fmnist.h5")               # r.totals, r.layers
    blob = cdma.codecs.encode("zvc", x)        # cdma.codecs: encode / decode / size

Errors raise cdma.Error subclasses (UsageError, TraceError, CodecError, ...) with the CLI's messages.
See the README ("Python API") and docs/python-example.py.
"""

import importlib.util as _importlib_util
import pathlib as _pathlib

from . import _compat

_package_dir = _pathlib.Path(__file__).parent  # not resolved: in a build, __init__.py is a link
if _importlib_util.find_spec(__name__ + "._native") is None:
    # Without this, Python reports the missing module as a "circular import".
    raise ImportError(_compat.missing_module_message(_package_dir))
try:
    from . import _build_info
except ImportError:  # a build configured before the build info existed
    _build_info = None
if _build_info is not None:
    _compat.check_build(_build_info, _package_dir)

from . import _native  # noqa: E402 - after the checks above
from . import codecs  # noqa: E402
from .analysis import LEVELS, Analysis, analysis, analyze
from .errors import CodecError, Error, ModelError, TraceError, UsageError, VerifyError
from .replay import Replay, replay, zoo
from .trace import Trace, TensorInfo, bfloat16_to_float32, open  # noqa: A004 - cdma.open is the front door

__version__ = _native.__version__

__all__ = [
    "Analysis", "CodecError", "Error", "LEVELS", "ModelError", "Replay", "TensorInfo", "Trace", "TraceError",
    "UsageError", "VerifyError", "analysis", "analyze", "bfloat16_to_float32", "codecs", "open", "replay", "zoo",
]
