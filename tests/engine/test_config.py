import pytest

from iaseg.engine.config import CONFIG_DIR, ConfigError, load_config


PAPER = ["camvid_erfpspnet_ce", "camvid_erfpspnet_ial", "cityscapes_erfpspnet_ce", "cityscapes_erfpspnet_ial",
         "cityscapes_bierfpspnet_ce", "cityscapes_bierfpspnet_ial"]


@pytest.mark.parametrize("name", PAPER)
def test_paper_configs_follow_the_protocol(name):
    cfg = load_config(name)
    assert cfg.optim.lr == 1e-3 and cfg.optim.milestones == [100, 200] and cfg.optim.gamma == 0.1
    assert cfg.optim.weight_decay == 2e-4 and cfg.train.epochs == 300 and not cfg.data.augment
    assert cfg.loss.name == ("ial" if name.endswith("ial") else "weighted_ce")
    assert cfg.loss.class_weights == "enet" and cfg.loss.a == 1.02
    if "bierf" in name:
        assert cfg.train.batch_size == 5 and cfg.data.spatial_size == [1024, 2048]
    else:
        assert cfg.train.batch_size == 8
    assert cfg.data.size == ([360, 480] if name.startswith("camvid") else [360, 720])


def test_ce_and_ial_configs_differ_only_in_the_loss():
    for a, b in [("camvid_erfpspnet_ce", "camvid_erfpspnet_ial"),
                 ("cityscapes_bierfpspnet_ce", "cityscapes_bierfpspnet_ial")]:
        da, db = load_config(a).to_dict(), load_config(b).to_dict()
        da.pop("loss"), db.pop("loss")
        assert da == db


def test_every_shipped_config_loads():
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert set(PAPER) <= set(names) and "tiny_synthetic" in names
    for n in names:
        load_config(n)


def test_unknown_key_names_key_and_file(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml.*train\.epochz"):
        load_config(f)
    f.write_text("trian:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml.*unknown section 'trian'"):
        load_config(f)


MINIMAL = "model: {name: erfpspnet}\ndata: {dataset: synthetic}\n"


@pytest.mark.parametrize("text,match", [
    (MINIMAL + "train:\n  epochs: three\n", "train.epochs: expected an integer"),
    (MINIMAL + "train:\n  amp: fp8\n", "train.amp must be one of"),
    ("model: {}\ndata:\n  size: [360, 100]\n", "data.size must be"),
    (MINIMAL + "loss:\n  name: dice\n", "loss.name must be one of"),
    ("model:\n  name: bierfpspnet\ndata: {dataset: synthetic}\n", "needs data.spatial_size"),
    # the network's declared inputs decide, not its name's spelling
    ("model:\n  name: BiERF-PSPNet\ndata: {dataset: synthetic}\n", "model BiERF-PSPNet needs data.spatial_size"),
    (MINIMAL + "train:\n  channels_last: 1\n", "expected true/false"),
    ("[1, 2]\n", "must be a mapping"),
    ("train: [\n", "not valid YAML"),
])
def test_bad_values(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(f)


@pytest.mark.parametrize("text, message", [
    ("", "empty config (a config names at least its model and data sections)"),
    ("# only a comment\n", "empty config (a config names at least its model and data sections)"),
    ("train: {epochs: 3}\n", "no model and no data section (a config names at least its model and data sections)"),
    ("model: {name: erfpspnet}\n", "no data section (a config names at least its model and data sections)"),
    ("data: {dataset: synthetic}\nmodel:\n", "no model section (a config names at least its model and data sections)"),
    ("model: {name: erfpspnet}\ndata: {}\n", "no data section (a config names at least its model and data sections)"),
])
def test_a_config_must_name_its_model_and_data(tmp_path, text, message):
    f = tmp_path / "exp.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert str(info.value) == f"{f}: {message}"


def test_overrides():
    cfg = load_config("camvid_erfpspnet_ial", ["optim.lr=1e-4", "train.amp=bf16", "data.size=[120, 160]",
                                                "model.options.bins=[1, 2, 4, 8]", "data.root=null"])
    assert cfg.optim.lr == 1e-4 and cfg.train.amp == "bf16" and cfg.data.size == [120, 160]
    assert cfg.model.options == {"bins": [1, 2, 4, 8]} and cfg.data.root is None
    for bad, match in [("optim.lrr=1", "unknown key optim.lrr"), ("lr=1", "expected section.key=value"),
                       ("train.epochs=0", "train.epochs must be >= 1")]:
        with pytest.raises(ConfigError, match=match):
            load_config("camvid_erfpspnet_ial", [bad])


def test_missing_config_lists_shipped_ones():
    with pytest.raises(ConfigError, match="camvid_erfpspnet_ial"):
        load_config("no_such_config")


def test_round_trip_yaml(tmp_path):
    cfg = load_config("cityscapes_bierfpspnet_ial")
    f = tmp_path / "c.yaml"
    f.write_text(cfg.to_yaml())
    assert load_config(f) == cfg


def test_leave_one_sequence_out_configs_differ_from_their_recipe_only_in_the_split():
    """Each left-out sequence has a paper-recipe and a strong-recipe config; apart from the
    sequences they train and score on, they are the shipped recipes."""
    for seq, suffix in (("0006R0", ""), ("0001TP", "_0001TP"), ("0016E5", "_0016E5")):
        for recipe, loso in (("camvid_study_ce", f"camvid_loso{suffix}_ce"),
                             ("camvid_strong_ce", f"camvid_loso{suffix}_strong_ce")):
            a, b = load_config(recipe).to_dict(), load_config(loso).to_dict()
            assert b["data"]["options"] == {"exclude_sequences": [seq]}
            assert b["data"]["val_options"] == {"sequences": [seq], "exclude_sequences": []}
            assert b["data"]["val_split"] == "train"
            for d in (a, b):
                for key in ("options", "val_options", "val_split"):
                    d["data"].pop(key)
            assert a == b, loso


def test_the_strong_bierf_config_is_the_strong_recipe_at_bierfs_sizes():
    erf, bierf = load_config("camvid_strong_ce").to_dict(), load_config("camvid_strong_bierf_ce").to_dict()
    assert bierf["data"]["augment"] == erf["data"]["augment"] and bierf["optim"] == erf["optim"]
    assert bierf["train"] == erf["train"] and bierf["loss"] == erf["loss"]
    assert bierf["data"]["spatial_size"] == [360, 480] and bierf["model"]["name"] == "bierfpspnet"


@pytest.mark.parametrize("override, key, shown", [
    ("optim.lr=.nan", "optim.lr", "nan"), ("optim.lr=.inf", "optim.lr", "inf"), ("optim.lr=nan", "optim.lr", "nan"),
    ("optim.eps=-.inf", "optim.eps", "-inf"), ("optim.weight_decay=.nan", "optim.weight_decay", "nan"),
    ("optim.gamma=inf", "optim.gamma", "inf"), ("loss.lam=.nan", "loss.lam", "nan"), ("loss.a=.inf", "loss.a", "inf"),
    ("optim.betas=[.nan, 0.999]", "optim.betas", "nan"),
])
def test_non_finite_numbers_are_refused_naming_the_key(override, key, shown):
    with pytest.raises(ConfigError) as info:
        load_config("tiny_synthetic", [override])
    assert str(info.value) == f"--set: {key}: expected a finite number, got {shown}"


def test_non_finite_class_weights_in_a_file_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: erfpspnet}\ndata: {dataset: synthetic}\nloss: {class_weights: [1, .nan]}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: loss.class_weights: expected a finite number, got nan$"):
        load_config(path)


@pytest.mark.parametrize("text, message", [
    ("model:\n  name: erfpspnet\ndata:\n  dataset: synthetic\noptim:\n  lr: 1.0e-3\n  lr: 1.0\n",
     "line 7: key 'lr' given twice (first on line 6); keep one"),
    ("model:\n  name: erfpspnet\ndata:\n  dataset: synthetic\nmodel:\n  name: bierfpspnet\n",
     "line 5: key 'model' given twice (first on line 1); keep one"),
    ("model: {name: erfpspnet, name: bierfpspnet}\ndata: {dataset: synthetic}\n",
     "line 1: key 'name' given twice (first on line 1); keep one"),
])
def test_a_key_given_twice_is_refused_with_the_key_and_line(tmp_path, text, message):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message}"
