"""ComfyUI runs this before it imports torch (its prestartup hook): start the model preload (preload.py).

preload.py is loaded under the name ComfyUI's loader gives it later as a submodule of this package (the folder's
path, dots written `_x_`, as nodes.load_custom_node names it), so the package's `from . import preload` finds
this same module and its registry instead of making a second one.
"""

import importlib.util
import os
import sys

_here = os.path.dirname(__file__)      # the path exactly as ComfyUI joined it: the package is named after it
_name = _here.replace(".", "_x_") + ".preload"
if _name not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_name, os.path.join(_here, "preload.py"))
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_name] = _module
    _spec.loader.exec_module(_module)
sys.modules[_name].start()
