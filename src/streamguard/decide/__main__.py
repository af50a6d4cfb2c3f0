"""`python -m streamguard.decide`: the consuming service."""

from streamguard.config import get_settings
from streamguard.decide.service import run

run(get_settings())
