"""BenchmarkSettings: what iaseg.speed measures, built by `iaseg benchmark` from its options."""


def test_the_settings_defaults_are_the_command_defaults():
    """iaseg.speed takes BenchmarkSettings, not argparse: a script that builds them with no
    arguments measures what `iaseg benchmark` does with no options."""
    from iaseg.speed import BenchmarkSettings

    from tests.helpers.speed import benchmark_args

    assert benchmark_args([]) == BenchmarkSettings()
    given = benchmark_args(["--mode", "train", "--size", "64x96", "--crop", "off", "--no-peak", "--workers", "0"])
    assert given == BenchmarkSettings(mode="train", size=(64, 96), crop="off", no_peak=True, workers=0)
