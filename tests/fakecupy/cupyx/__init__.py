"""The stand-in's cupyx: only what gradflow's backend uses (``cupyx.scipy.special``)."""
