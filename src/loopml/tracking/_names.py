"""Readable random run names (``brave-otter-42``), as MLflow gives unnamed runs."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "amber agile bold brave bright calm clever crisp daring eager fair fast fierce gentle "
    "golden grand happy honest jolly keen kind lively lucky merry mighty neat nimble noble "
    "polite proud quick quiet rare sharp shy silent sleek smart snug solid steady sunny swift "
    "tidy tough vivid warm wise witty zesty"
).split()
_NOUNS = (
    "ant bat bear bee bison boar carp cat colt crab crow deer dove duck eel elk finch fox "
    "frog goat gull hare hawk heron ibis jay kite koala lark lion lynx mole moth newt otter "
    "owl panda pike puma quail ram raven robin seal shark slug snail swan tiger toad trout "
    "vole wasp whale wolf wren yak zebra"
).split()


def random_run_name() -> str:
    """An adjective, a noun and a number."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randrange(1000)}"
