"""`iaseg model-info`."""
from iaseg.cli import main as cli_main


def test_model_info_prints_parameters_and_gflops(capsys):
    assert cli_main(["model-info", "erfpspnet", "--num-classes", "11", "--size", "64x64"]) == 0
    out = capsys.readouterr().out
    assert "2,483,836" in out and "GFLOPs" in out
