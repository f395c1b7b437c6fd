import pytest

from chatface.config import ConfigError, Prediction, load_config


def test_defaults_are_the_synth_world():
    cfg = load_config()
    assert cfg.world.name == "synth" and cfg.world.image_size == 64
    assert cfg.backbone.preset == "synth64_resnet" and cfg.backbone.prediction == Prediction.v
    assert (cfg.mapper.lambda_dir, cfg.mapper.lambda_id, cfg.mapper.lambda_pre) == (2.0, 0.5, 0.01)


def test_the_full_scale_world_trains_with_the_papers_loss_weights():
    cfg = load_config(["world=ffhq256"])
    assert (cfg.mapper.lambda_dir, cfg.mapper.lambda_id, cfg.mapper.lambda_pre) == (2.0, 0.5, 0.2)
    assert cfg.mapper.lr == 0.2 and cfg.mapper.direction_loss.value == "cosine" and not cfg.mapper.whiten


def test_world_preset_then_overrides():
    cfg = load_config(["world=ffhq256", "mapper.lr=0.1", "data.batch_size=4"])
    assert cfg.world.image_size == 256 and cfg.backbone.preset == "ffhq256_autoenc"
    assert cfg.backbone.prediction == Prediction.eps
    assert cfg.mapper.lr == 0.1 and cfg.data.batch_size == 4


def test_config_is_read_only():
    cfg = load_config()
    with pytest.raises(Exception):
        cfg.mapper.lr = 3.0


@pytest.mark.parametrize("override, named, listed", [
    ("mapper.lrr=0.1", "'mapper.lrr'", "mapper.lr"),
    ("mapperr.lr=0.1", "'mapperr'", "mapper"),
    ("backbone.pretrain.max_stepz=3", "'backbone.pretrain.max_stepz'", "backbone.pretrain.max_steps"),
])
def test_unknown_key_names_it_and_lists_valid_keys(override, named, listed):
    with pytest.raises(ConfigError) as error:
        load_config([override])
    assert named in str(error.value) and listed in str(error.value)


@pytest.mark.parametrize("override, key", [
    ("mapper.lr=fast", "mapper.lr"),
    ("data.batch_size=1.5", "data.batch_size"),
    ("backbone.prediction=x0", "backbone.prediction"),
])
def test_wrong_type_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config([override])


def test_unknown_world_lists_the_known_ones():
    with pytest.raises(ConfigError, match="ffhq256, synth"):
        load_config(["world=mars"])


def test_override_without_equals_is_explained():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(["mapper.lr"])


def test_override_whose_value_is_not_yaml_names_the_override():
    override = r"judges.clip_templates=[\x27{}\x27]"  # a shell quote that reached us unexpanded
    with pytest.raises(ConfigError, match="not valid YAML") as error:
        load_config([override])
    assert repr(override) in str(error.value)
