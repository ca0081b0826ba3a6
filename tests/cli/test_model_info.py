"""`iaseg model-info`."""
from iaseg.cli import main as cli_main


def test_model_info_prints_parameters_and_gflops(capsys):
    assert cli_main(["model-info", "erfpspnet", "--num-classes", "11", "--size", "64x64"]) == 0
    out = capsys.readouterr().out
    assert "2,483,836" in out and "GFLOPs" in out


def test_model_info_takes_an_import_path(capsys):
    # TinyNet(width 8, 5 classes): conv 3*8*9 + BN 2*8 + head 8*5 + 5 = 277 parameters
    assert cli_main(["model-info", "tests.helpers.networks:tiny_net", "--num-classes", "5", "--size", "32x32"]) == 0
    assert " 277 " in capsys.readouterr().out
    assert cli_main(["model-info", "nope", "--num-classes", "5"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
