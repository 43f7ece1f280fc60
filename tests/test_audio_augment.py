"""The audio augmentations that make a keyword model hold across voices, rooms and microphones, and per-utterance
normalisation: train-only, shape-preserving, seeded, and each measured to do what it says on real log-mel."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_ok, assert_user_error, example, read_yaml, run_cli, write_yaml
from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.inputs.audio_augment import Perturb, PerturbOptions
from lamina.inputs.audio_decode import log_mel
from lamina.inputs.audio_encoder import utterance_normalise

sf = pytest.importorskip("soundfile")
RATE = 16000
DB = 10 / math.log(10)  # natural-log power → dB


def audio_type(**options) -> object:
    cls = INPUT_TYPES["audio"]
    t = cls("audio", cls.Options(**options))
    t.state = {"samples": RATE, "mean": [0.0] * 40, "std": [1.0] * 40, "normalise": "utterance"}
    return t


def perturb(**options) -> Perturb:
    return Perturb(audio_type()._perturb().axes, PerturbOptions(**options))


def features(wave: np.ndarray) -> torch.Tensor:
    return log_mel(torch.from_numpy(wave.astype(np.float32))[None], audio_type().spec())


def burst(start: int = 4000, stop: int = 12000, seed: int = 0) -> np.ndarray:
    """White noise from ``start`` to ``stop`` (samples of one second) over a faint floor."""
    rng = np.random.default_rng(seed)
    x = 1e-3 * rng.standard_normal(RATE)
    x[start:stop] += 0.3 * rng.standard_normal(stop - start)
    return x


def tone(hz: float) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * hz * np.arange(RATE) / RATE) + 1e-4 * np.random.default_rng(1).standard_normal(
        RATE)


def active_frames(x: torch.Tensor) -> int:
    energy = x.exp().sum(dim=1)[0]
    loud = torch.nonzero(energy > 0.1 * energy.max())
    return int(loud[-1] - loud[0] + 1)


def peak_hz(p: Perturb, x: torch.Tensor) -> float:
    return float(p.centres[x[0].mean(dim=1).argmax()])


EACH = {"speed": dict(speed=(0.8, 1.2)), "tempo": dict(tempo=(0.8, 1.2)), "pitch": dict(pitch=3.0),
        "vtlp": dict(vtlp=(0.9, 1.1)), "reverb": dict(reverb=1.0), "channel": dict(channel=1.0)}


@pytest.mark.parametrize("name", list(EACH))
def test_each_augmentation_keeps_the_shape_repeats_with_the_seed_and_changes_the_clip(name: str) -> None:
    x = torch.cat([features(burst(seed=i)) for i in range(3)])
    p = perturb(**EACH[name])
    torch.manual_seed(0)
    a = p(x)
    torch.manual_seed(0)
    b = p(x)
    assert a.shape == x.shape and torch.isfinite(a).all() and torch.equal(a, b)
    assert (a - x).abs().max() > 0.5  # natural-log units: over 2 dB somewhere
    assert torch.equal(perturb()(x), x)  # every range at 1, every probability 0: nothing changes


def test_augmentations_run_in_training_only() -> None:
    t = audio_type()
    encoder = t.encoder()
    calls = []
    encoder.perturb.register_forward_hook(lambda *_: calls.append(1))
    x = torch.cat([features(burst(seed=i)) for i in range(2)]).half()
    encoder.eval()
    with torch.no_grad():
        first, second = encoder(x), encoder(x)
    assert calls == [] and torch.equal(first, second)
    encoder.train()
    encoder(x)
    assert calls == [1]
    assert audio_type(augment=False).encoder().perturb is None


def test_speed_changes_the_duration_and_the_frequencies_by_the_factor() -> None:
    p = perturb(speed=(1.25, 1.25))
    x = features(burst())
    assert abs(active_frames(p(x)) - active_frames(x) / 1.25) <= 2
    slow = perturb(speed=(0.8, 0.8))
    assert abs(active_frames(slow(x)) - active_frames(x) / 0.8) <= 2
    y = features(tone(1000))
    assert peak_hz(p, y) == pytest.approx(1000, rel=0.08)
    assert peak_hz(p, p(y)) == pytest.approx(1250, rel=0.08)


def test_tempo_changes_the_duration_and_keeps_the_frequencies() -> None:
    p = perturb(tempo=(0.8, 0.8))
    x = features(burst())
    assert abs(active_frames(p(x)) - active_frames(x) / 0.8) <= 2
    y = features(tone(1000))
    assert peak_hz(p, p(y)) == peak_hz(p, y)


def harmonics(f0: float) -> np.ndarray:
    """Equal harmonics of f0 up to 4 kHz: a flat envelope, resolved partials in the low mel bins."""
    t = np.arange(RATE) / RATE
    return sum(0.05 * np.sin(2 * np.pi * f0 * h * t) for h in range(1, int(4000 // f0) + 1))


def test_pitch_moves_the_harmonics_as_a_real_higher_voice_and_vtlp_the_formants() -> None:
    p = perturb()
    low = p.centres < 1100  # where 40 mel bins resolve the partials
    y, higher = features(harmonics(250)), features(harmonics(315))
    up = p.shift_pitch(y, torch.tensor([315 / 250]))
    profile = {k: v[0, low].mean(dim=1) for k, v in {"before": y, "up": up, "real": higher}.items()}
    match = {k: float(torch.corrcoef(torch.stack([profile[k], profile["real"]]))[0, 1]) for k in ("before", "up")}
    assert match["up"] > 0.75 and match["before"] < 0.5, match  # the partials sit where a 315 Hz voice's do
    assert active_frames(up) == active_frames(y)
    y = features(tone(1000))
    longer = perturb(vtlp=(1.1, 1.1))
    assert peak_hz(p, longer(y)) == pytest.approx(1100, rel=0.07)


def test_reverb_lengthens_the_decay_and_never_reaches_back_in_time() -> None:
    p = perturb(reverb=1.0, rt60=(0.6, 0.6), drr=(0.0, 0.0))
    x = features(burst(4000, 8000))  # the sound ends at frame 50
    torch.manual_seed(0)
    y = p(x)
    after = (y[0, :, 55:75].exp().mean() / x[0, :, 55:75].exp().mean()).item()
    assert after > 100  # 20 dB above the floor where the dry clip is silent
    torch.manual_seed(0)
    floor_only = p(features(burst(4000, 4000)))  # the same room, no sound: the same before the sound starts
    assert torch.allclose(y[0, :, :20], floor_only[0, :, :20], atol=1e-4)
    # dB per frame, in the low bins (high ones decay faster, as air absorbs them): 60 dB in RT60 (60 frames)
    tail = y[0, p.centres < 1000, 52:72].exp().mean(dim=0).log() * DB
    slope = float(np.polyfit(np.arange(20), tail.numpy(), 1)[0])
    assert -1.25 < slope < -0.8, slope


def test_telephone_band_removes_the_energy_below_300_hz_as_a_real_filter_does() -> None:
    from scipy.signal import butter, sosfilt

    p = perturb()
    wave = burst(0, RATE)
    x = features(wave)
    torch.manual_seed(0)
    y = x + p.telephone(1)[..., None]
    real = features(sosfilt(butter(4, [300, 3400], "bandpass", fs=RATE, output="sos"), wave))
    low, mid = p.centres < 200, (p.centres > 600) & (p.centres < 2500)
    assert float((x[0, low].exp().mean() / y[0, low].exp().mean()).log() * DB) > 15
    assert float((x[0, low].exp().mean() / real[0, low].exp().mean()).log() * DB) > 15
    assert (y[0, mid] - x[0, mid]).abs().max() * DB < 1.0  # the pass band is untouched
    gap = (y[0, mid | low].mean(dim=1) - real[0, mid | low].mean(dim=1)).abs() * DB
    assert gap[: int(low.sum())].mean() < 12 and gap[int(low.sum()):].max() < 1.5


def test_utterance_normalisation_is_zero_mean_per_clip_and_cancels_a_fixed_channel() -> None:
    x = torch.cat([features(burst(seed=i)) for i in range(3)])
    z = utterance_normalise(x)
    assert z.mean(dim=2).abs().max() < 1e-4 and torch.allclose(z.square().mean(dim=(1, 2)), torch.ones(3))
    channel = perturb().microphone(3)[..., None]  # a per-bin gain: an offset on log power
    assert torch.allclose(utterance_normalise(x + channel), z, atol=1e-4)
    silent = torch.full((1, 40, 101), math.log(1e-10))
    assert torch.isfinite(utterance_normalise(silent)).all()


def test_a_model_saved_before_utterance_normalisation_keeps_the_dataset_statistics() -> None:
    t = audio_type()
    assert t.encoder().utterance
    del t.state["normalise"]
    assert not t.encoder().utterance


def test_recorded_noise_is_mixed_in_from_a_folder(tmp_path: Path) -> None:
    (tmp_path / "noise").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(tmp_path / "noise" / f"n{i}.wav", (0.1 * rng.standard_normal(RATE)).astype(np.float32), RATE)
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(500).astype(np.float32), RATE)
    cls = INPUT_TYPES["audio"]
    t = cls("audio", cls.Options(duration=1.0, noise_dir=str(tmp_path / "noise"), recorded_noise=1.0, snr=(0, 0)))
    t.fit(pd.Series([str(clip)] * 2))
    assert len(t.state["noise_files"]) == 3
    x = t.transform(pd.Series([str(clip)])).float()
    p = t.encoder().perturb
    torch.manual_seed(0)
    mixed = p.noise(x)
    assert abs(float(mixed.exp().sum() / x.exp().sum()) - 2) < 0.05  # 0 dB: the noise as loud as the clip
    quiet = x[0].mean(dim=0) < x[0].mean()  # the white noise fills the bins the tone leaves empty
    assert (mixed[0][:, quiet] > x[0][:, quiet] + 1).float().mean() > 0.5
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LaminaError, match="noise_dir .* holds no WAV"):
        cls("audio", cls.Options(noise_dir=str(empty))).fit(pd.Series([str(clip)]))


def test_options_reject_backwards_ranges() -> None:
    cls = INPUT_TYPES["audio"]
    for name in ("speed", "tempo", "vtlp", "rt60"):
        with pytest.raises(ValueError, match=f"{name} range"):
            cls.Options(**{name: (1.2, 0.9)})
    with pytest.raises(ValueError, match="above 0"):
        cls.Options(speed=(0, 1))


def test_train_with_every_augmentation_and_recorded_noise_on_synthesised_speech(tmp_path: Path) -> None:
    pytest.importorskip("espeakng_loader")
    speech = example("speech_commands")
    make, noise = speech.make, speech.noise

    table = make(tmp_path, voices=12, takes=2, seed=3, words=["yes", "no", "stop"])
    (tmp_path / "noise").mkdir()
    rng = np.random.default_rng(0)
    for kind in ("pink", "hum"):
        sf.write(tmp_path / "noise" / f"{kind}.wav", 0.05 * noise(kind, 22050, rng), 22050)
    config = read_yaml(tmp_path / "config.yaml")
    config["inputs"][0]["options"] = {"duration": 1.0, "widths": [32, 48], "noise_dir": "noise"}
    config["trainer"].update({"epochs": 15, "batch_size": 16, "early_stopping": {"patience": 15}})
    write_yaml(config, tmp_path / "config.yaml")
    assert_ok(run_cli("train", "config.yaml", cwd=tmp_path))
    info = json.loads((tmp_path / "runs" / "speech_commands" / "lamina.json").read_text(encoding="utf-8"))
    accuracy = info["metrics"]["test"]["word"]["accuracy"]
    assert accuracy > 0.5, accuracy  # three words: chance is 1/3
    (tmp_path / "noise" / "pink.wav").unlink()  # a trained model never reads the noise folder again
    test = table[table["split"] == "test"]
    test[["audio"]].to_csv(tmp_path / "new.csv", index=False)
    assert_ok(run_cli("predict", "runs/speech_commands", "new.csv", "-o", "preds.csv", cwd=tmp_path))
    assert len(pd.read_csv(tmp_path / "preds.csv")) == len(test)
    config["inputs"][0]["options"]["noise_dir"] = "missing"
    write_yaml(config, tmp_path / "config.yaml")
    assert_user_error(run_cli("train", "config.yaml", cwd=tmp_path), "noise_dir missing")
