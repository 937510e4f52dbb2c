"""A command-line override must have the type of the setting it replaces: one clear error naming the key."""
import subprocess
import sys

import pytest

from federation.config import compose
from federation.errors import ConfigError


@pytest.mark.parametrize("override, kind", [("train.epochs=two", "a whole number"), ("local.rounds=2.5", "a whole number"),
                                            ("dp.target_epsilon=lots", "a number"), ("seed=abc", "a whole number")])
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(override, kind):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{key}: '.*' is not {kind} \(the configured value is "):
        compose("config", ["federation=cities", override])


def test_values_of_the_right_type_and_group_choices_pass():
    cfg = compose("config", ["federation=cities", "dp.target_epsilon=3", "local.rounds=4", "~federation.nodes.piraeus",
                             "federation.data_root=/tmp/x"])
    assert cfg.dp.target_epsilon == 3 and cfg.local.rounds == 4 and "piraeus" not in cfg.federation.nodes


def test_cli_says_it_in_one_line_without_a_traceback():
    out = subprocess.run([sys.executable, "-m", "federation.cli", "baseline", "train.epochs=two"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "train.epochs: 'two' is not a whole number" in out.stderr and "Traceback" not in out.stderr
