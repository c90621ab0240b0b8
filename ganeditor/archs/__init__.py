"""Networks as plain nn.Modules whose attribute names equal the upstream checkpoint keys.

Importing this package fills the registry (explicit imports, so frozen builds work).
"""

from ganeditor.archs.registry import ARCHS, build, register  # noqa: F401

# Explicit imports fill the registry.
from ganeditor.archs import ncnn_graph  # noqa: F401,E402
from ganeditor.archs import cyclegan  # noqa: F401,E402
from ganeditor.archs import rrdbnet  # noqa: F401,E402
from ganeditor.archs import sr_discriminators  # noqa: F401,E402
from ganeditor.archs import srresnet  # noqa: F401,E402
from ganeditor.archs import srvgg  # noqa: F401,E402
from ganeditor.archs import stylegan2  # noqa: F401,E402
from ganeditor.archs import stylegan2_disc  # noqa: F401,E402
from ganeditor.archs import encoder  # noqa: F401,E402
from ganeditor.archs import stylegan3  # noqa: F401,E402
from ganeditor.archs import mtcnn  # noqa: F401,E402
from ganeditor.archs import attribute_regressor  # noqa: F401,E402
from ganeditor.archs import restoration  # noqa: F401,E402
