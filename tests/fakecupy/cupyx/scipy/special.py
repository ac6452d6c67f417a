"""cupyx.scipy.special on the stand-in: erf, erfc and erfinv computed on the host (numpy has
none of them, so gradflow's own host versions), with the operands' devices checked as every
function of the stand-in does."""

import numpy as np

from cupy import _computes
from gradflow.ops.elementwise import _special

erf = _computes(_special(np, "erf"))
erfc = _computes(_special(np, "erfc"))
erfinv = _computes(_special(np, "erfinv"))
